"""Upload progress: a tqdm bar on a terminal, plain log lines otherwise (files, bytes, rate)."""

from __future__ import annotations

import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from client.upload_report import FileResult, Outcome, Progress, format_size
from logs import file_fields

log = logging.getLogger(__name__)


class _Tally(ABC):
    """Running totals; a file that turns out not to need sending leaves the planned bytes."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.planned_files = 0
        self.planned_bytes = 0
        self.done_files = 0
        self.acked_bytes = 0

    def planned(self, files: int, size: int) -> None:
        self.planned_files += files
        self.planned_bytes += size
        self._show()

    def advanced(self, size: int) -> None:
        self.acked_bytes += size
        self._show()

    def finished(self, result: FileResult) -> None:
        self.done_files += 1
        if result.outcome is not Outcome.SENT:
            self.planned_bytes -= result.file.signature.size
        self._show(result)

    @abstractmethod
    def _show(self, finished: FileResult | None = None) -> None:
        """Show the totals (and the file just finished, if any)."""


class LogProgress(_Tally):
    """One log line per file sent or skipped as unchanged, with the running totals and rate."""

    def _show(self, finished: FileResult | None = None) -> None:
        if finished is None:
            return
        if finished.outcome is Outcome.SENT:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            log.info(
                "sent %s (%s, generation %d) [%d/%d files, %s/%s, %.1f MB/s]",
                finished.file.file_id.path,
                format_size(finished.size),
                finished.generation,
                self.done_files,
                self.planned_files,
                format_size(self.acked_bytes),
                format_size(self.planned_bytes),
                self.acked_bytes / elapsed / 1e6,
                extra=file_fields(finished.file.file_id, finished.generation),
            )
        elif finished.outcome is Outcome.UNCHANGED:
            log.info(
                "unchanged, not sent again: %s (%s)",
                finished.file.file_id.path,
                finished.detail,
                extra=file_fields(finished.file.file_id),
            )


class BarProgress(_Tally):
    """A byte bar (tqdm computes the rate) with a files counter."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1000, dynamic_ncols=True, file=stream)

    def _show(self, finished: FileResult | None = None) -> None:
        self.bar.total = self.planned_bytes
        self.bar.set_postfix_str(f"{self.done_files}/{self.planned_files} files", refresh=False)
        self.bar.update(self.acked_bytes - self.bar.n)

    def close(self) -> None:
        self.bar.close()


@contextmanager
def progress_for(stream: IO[str] = sys.stderr) -> Iterator[Progress]:
    """A bar when ``stream`` is a terminal (log lines then print above it), log lines otherwise."""
    if not stream.isatty():
        yield LogProgress()
        return
    progress = BarProgress(stream)
    try:
        with logging_redirect_tqdm(loggers=[logging.getLogger()]):
            yield progress
    finally:
        progress.close()
