"""The upload's summary: outcomes counted, every failure listed up to a cap."""

from pathlib import Path

from client.discovery import FileSignature, LocalFile, Rejected
from client.upload_report import FileResult, Outcome, UploadReport
from models.identity import FileId


def local(path: str, size: int) -> LocalFile:
    return LocalFile(FileId("host", path), Path("/data") / path, FileSignature(size, 1))


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
