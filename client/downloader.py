"""Download stored objects: list, select, describe and plan first (:mod:`client.download_plan`), then write.

Every object is read in pieces of :data:`PIECE_SIZE` by :func:`storage.s3.read_verified`,
which compares size and full-object CRC32 with the stored ones after the last piece, and
written into a :class:`storage.local.AtomicFile`, a hidden ``.<name>.XXXX.part`` sibling
that only a verified download renames over the destination.  An error, a checksum
mismatch or a stop request (Ctrl-C) discards the temp file: no destination ever holds a
partial file, and with overwrite the previous file stays whole until the rename.  A
process killed outright (SIGKILL, power cut) cannot clean up and may leave a hidden
``.part`` sibling behind, never a partial destination.

Downloads run on ``jobs`` threads sharing one S3 client.  A file that fails does not stop
the others; the report lists the files written and those that failed, both in plan
(key) order.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Protocol

from botocore.client import BaseClient
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from client.download_plan import (
    DownloadPlan,
    PlannedDownload,
    Selection,
    plan_downloads,
    refuse,
    select_keys,
)
from errors import ClientSideError
from logs import file_fields
from settings import Settings
from storage.local import AtomicFile, confined_destination
from storage.objects import StoredObject, key_folder
from storage.s3 import describe_object, list_keys, make_s3_client, read_verified

log = logging.getLogger(__name__)

# What a running download holds in memory; large enough that per-read overhead is negligible.
PIECE_SIZE = 1024**2


class DownloadStopped(ClientSideError):
    """The download was asked to stop; the file being written was discarded."""


@dataclass(frozen=True)
class DownloadRequest:
    dest: Path
    selection: Selection
    layout: str
    overwrite: bool
    jobs: int


@dataclass(frozen=True)
class DownloadReport:
    planned: int
    written: list[Path]  # plan order
    failed: list[tuple[PlannedDownload, str]]  # plan order, with the reason
    stopped: bool


class Progress(Protocol):
    def advanced(self, size: int) -> None: ...

    def finished(self, download: PlannedDownload, written: bool) -> None: ...


def run_download(
    settings: Settings, request: DownloadRequest, stop: threading.Event, progress_stream: IO[str] | None = None
) -> DownloadReport:
    """Download what ``request`` selects from the configured bucket; setting ``stop`` ends it early.

    Raises before anything is written: :class:`DownloadPlanError` for a refused selection or
    plan, :class:`storage.local.UnsafeDestination` for a destination behind a symlink out of
    DEST, :class:`storage.s3.S3Error` for a failed listing.  Failures of single files are in
    the report.  Progress goes to ``progress_stream`` (standard error by default).
    """
    client = make_s3_client(request.jobs)
    bucket = settings.s3_bucket
    listed_prefix = key_folder(settings.s3_prefix) + request.selection.prefix
    keys = select_keys(
        list_keys(client, bucket, listed_prefix),
        bucket=bucket,
        bucket_prefix=settings.s3_prefix,
        selection=request.selection,
    )
    plan = plan_downloads(
        describe_objects(client, bucket, keys, jobs=request.jobs),
        bucket_prefix=settings.s3_prefix,
        dest=request.dest,
        layout=request.layout,
        overwrite=request.overwrite,
        exists=os.path.lexists,
    )
    log.info(
        "downloading %d file(s), %s, from s3://%s/%s to %s",
        len(plan.downloads),
        tqdm.format_sizeof(plan.total_bytes, "B", 1000),
        bucket,
        listed_prefix,
        plan.dest,
    )
    with progress_for(plan, progress_stream or sys.stderr) as progress:
        return execute(plan, client, bucket, jobs=request.jobs, progress=progress, stop=stop)


def describe_objects(client: BaseClient, bucket: str, keys: Sequence[str], *, jobs: int) -> list[StoredObject]:
    """HeadObject for every key, on ``jobs`` threads; a key deleted since it was listed is an error."""
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="describe") as pool:
        described = list(pool.map(partial(describe_object, client, bucket), keys))
    deleted = [key for key, stored in zip(keys, described, strict=True) if stored is None]
    refuse(deleted, "object(s) deleted since the listing")
    return [stored for stored in described if stored is not None]


def execute(
    plan: DownloadPlan,
    client: BaseClient,
    bucket: str,
    *,
    jobs: int,
    progress: Progress,
    stop: threading.Event,
) -> DownloadReport:
    """Write every planned file on ``jobs`` threads; ``stop`` (or Ctrl-C in the calling thread) ends early.

    A destination reached through a symlink that leads out of ``plan.dest`` refuses the
    whole plan (:class:`storage.local.UnsafeDestination`) before anything is written.
    """
    for download in plan.downloads:
        confined_destination(plan.dest, download.destination, download.stored.key)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="download") as pool:
        futures = [pool.submit(_download_one, client, bucket, download, progress, stop) for download in plan.downloads]
        try:
            wait(futures)
        except BaseException:
            # Ctrl-C here: the running downloads discard their temp files; the pool waits for them.
            stop.set()
            raise
    return _report(plan, futures, stopped=stop.is_set())


def _download_one(
    client: BaseClient, bucket: str, download: PlannedDownload, progress: Progress, stop: threading.Event
) -> None:
    if stop.is_set():
        raise DownloadStopped()
    try:
        with (
            AtomicFile(download.destination) as out,
            closing(read_verified(client, bucket, download.stored, piece_size=PIECE_SIZE)) as pieces,
        ):
            for piece in pieces:
                if stop.is_set():
                    raise DownloadStopped()
                out.write(piece)
                progress.advanced(len(piece))
            out.commit()
    except DownloadStopped:
        raise
    except Exception as exc:
        log.error(
            "not written: %s from s3://%s/%s: %s",
            download.destination,
            bucket,
            download.stored.key,
            exc,
            extra=file_fields(download.file_id),
        )
        progress.finished(download, written=False)
        raise
    progress.finished(download, written=True)


def _report(plan: DownloadPlan, futures: Sequence[Future[None]], *, stopped: bool) -> DownloadReport:
    written: list[Path] = []
    failed: list[tuple[PlannedDownload, str]] = []
    for download, future in zip(plan.downloads, futures, strict=True):
        error = future.exception()
        if error is None:
            written.append(download.destination)
        elif not isinstance(error, DownloadStopped):
            failed.append((download, str(error)))
    return DownloadReport(len(plan.downloads), written, failed, stopped)


class LogProgress:
    """One log line per file written, with the running totals and the rate."""

    def __init__(self, plan: DownloadPlan) -> None:
        self._files = len(plan.downloads)
        self._bytes = plan.total_bytes
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._done_files = 0
        self._done_bytes = 0

    def advanced(self, size: int) -> None:
        with self._lock:
            self._done_bytes += size

    def finished(self, download: PlannedDownload, written: bool) -> None:
        with self._lock:
            self._done_files += 1
            done_files, done_bytes = self._done_files, self._done_bytes
        if written:
            log.info(
                "wrote %s (%s) [%d/%d files, %s/%s, %.1f MB/s]",
                download.destination,
                tqdm.format_sizeof(download.stored.size, "B", 1000),
                done_files,
                self._files,
                tqdm.format_sizeof(done_bytes, "B", 1000),
                tqdm.format_sizeof(self._bytes, "B", 1000),
                done_bytes / max(time.monotonic() - self._started, 1e-9) / 1e6,
                extra=file_fields(download.file_id),
            )


class BarProgress:
    """A byte bar (tqdm computes the rate) with a files counter."""

    def __init__(self, plan: DownloadPlan, stream: IO[str]) -> None:
        self._files = len(plan.downloads)
        self._done_files = 0
        self._lock = threading.Lock()
        self.bar = tqdm(
            total=plan.total_bytes, unit="B", unit_scale=True, unit_divisor=1000, dynamic_ncols=True, file=stream
        )

    def advanced(self, size: int) -> None:
        with self._lock:
            self.bar.update(size)

    def finished(self, download: PlannedDownload, written: bool) -> None:
        with self._lock:
            self._done_files += 1
            self.bar.set_postfix_str(f"{self._done_files}/{self._files} files")


@contextmanager
def progress_for(plan: DownloadPlan, stream: IO[str]) -> Iterator[Progress]:
    """A bar when ``stream`` is a terminal (log lines then print above it), log lines otherwise."""
    if not stream.isatty():
        yield LogProgress(plan)
        return
    progress = BarProgress(plan, stream)
    try:
        with logging_redirect_tqdm(loggers=[logging.getLogger()]):
            yield progress
    finally:
        progress.bar.close()
