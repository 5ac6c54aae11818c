"""What the user sees while an upload runs: the progress display chosen for the terminal."""

import io
import logging
from pathlib import Path

from client.discovery import FileSignature, LocalFile
from client.progress import BarProgress, LogProgress, progress_for
from client.upload_report import FileResult, Outcome
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
