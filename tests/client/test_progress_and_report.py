"""What the user sees: the progress display chosen for the terminal, and the summary."""

import io
import logging
from pathlib import Path

from client.discovery import FileSignature, LocalFile, Rejected
from client.progress import BarProgress, LogProgress, progress_for
from client.uploader import FileResult, Outcome, UploadReport
from models.identity import FileId


def local(path: str, size: int) -> LocalFile:
    return LocalFile(FileId("host", path), Path("/data") / path, FileSignature(size, 1))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_bytes_files_and_rate():
    terminal = Terminal()
    with progress_for(terminal) as progress:
        assert isinstance(progress, BarProgress)
        progress.planned(2, 3_000_000)
        progress.advanced(1_000_000)
        progress.finished(FileResult(local("a", 1_000_000), Outcome.SENT, "", 1, 1_000_000))
        progress.finished(FileResult(local("b", 2_000_000), Outcome.UNCHANGED, "already sent", 1))
    final = terminal.getvalue().split("\r")[-1]
    assert "1.00M/1.00M" in final and "2/2 files" in final and "B/s" in final


def test_anything_else_gets_one_log_line_per_file_with_totals(caplog):
    caplog.set_level(logging.INFO, logger="client")
    with progress_for(io.StringIO()) as progress:
        assert isinstance(progress, LogProgress)
        progress.planned(2, 3000)
        progress.advanced(1000)
        progress.finished(FileResult(local("a", 1000), Outcome.SENT, "", 42, 1000))
        progress.finished(FileResult(local("b", 2000), Outcome.UNCHANGED, "already sent", 41))
    assert caplog.messages[0].startswith("sent a (1.0 kB, generation 42) [1/2 files, 1.0 kB/3.0 kB, ")
    assert caplog.messages[1] == "unchanged, not sent again: b (already sent)"


def test_the_summary_counts_outcomes_and_lists_every_failure_up_to_a_cap():
    results = [
        FileResult(local("a", 2_000_000), Outcome.SENT, "", 1, 2_000_000),
        FileResult(local("b", 5), Outcome.UNCHANGED, "already sent", 1),
    ] + [FileResult(local(f"f{n}", 1), Outcome.FAILED, "not sent: broker down") for n in range(3)]
    rejected = [
        Rejected(Path("/data/link"), "skipped: symlinks are never followed", False),
        Rejected(Path("/data/bad"), "name cannot travel: control character", True),
    ]
    report = UploadReport(results, rejected, elapsed=2.0)
    lines = report.summary_lines(max_listed=3)
    assert lines[0] == (
        "upload summary: 1 file(s) sent (2.0 MB in 2.00 s, 1.0 MB/s), 1 unchanged (already sent), 1 skipped, 4 failed"
    )
    assert lines[1:] == [
        "  FAILED /data/bad: name cannot travel: control character",
        "  FAILED /data/f0: not sent: broker down",
        "  FAILED /data/f1: not sent: broker down",
        "  ... and 1 more failures (each is in the log above)",
    ]
    assert not report.ok
    assert UploadReport(results[:2], rejected[:1], 1.0).ok
