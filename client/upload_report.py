"""What an upload tells its user: each file's outcome as it finishes (to a progress display), and the summary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from client.discovery import LocalFile, Rejected


class Outcome(Enum):
    SENT = "sent"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    file: LocalFile
    outcome: Outcome
    detail: str = ""
    generation: int | None = None
    size: int = 0


class Progress(Protocol):
    def planned(self, files: int, size: int) -> None: ...

    def advanced(self, size: int) -> None: ...

    def finished(self, result: FileResult) -> None: ...


@dataclass
class UploadReport:
    """The outcome of a one-shot upload, for the summary and the exit status."""

    results: list[FileResult]
    rejected: list[Rejected]
    elapsed: float

    @property
    def failures(self) -> list[tuple[str, str]]:
        failures = [(str(r.path), r.reason) for r in self.rejected if r.failure]
        failures += [(str(r.file.path), r.detail) for r in self.results if r.outcome is Outcome.FAILED]
        return failures

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    def summary_lines(self, max_listed: int = 100) -> list[str]:
        sent_bytes = sum(result.size for result in self.results if result.outcome is Outcome.SENT)
        rate = sent_bytes / self.elapsed / 1e6 if self.elapsed > 0 else 0.0
        skipped = sum(1 for rejected in self.rejected if not rejected.failure)
        failures = self.failures
        lines = [
            f"upload summary: {self.count(Outcome.SENT)} file(s) sent ({format_size(sent_bytes)} in "
            f"{self.elapsed:.2f} s, {rate:.1f} MB/s), {self.count(Outcome.UNCHANGED)} unchanged (already sent), "
            f"{skipped} skipped, {len(failures)} failed"
        ]
        lines += [f"  FAILED {path}: {reason}" for path, reason in failures[:max_listed]]
        if len(failures) > max_listed:
            lines.append(f"  ... and {len(failures) - max_listed} more failures (each is in the log above)")
        return lines


def format_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
