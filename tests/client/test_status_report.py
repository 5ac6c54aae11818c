import pytest

from client.status_report import render_status
from client.workers import WorkerUnavailable, silent_workers, worker_urls


def summary(**changes):
    base = {
        "workers": [
            {"url": "http://a:6066", "partitions": [0, 1, 2, 5, 7], "recovering": False, "uptime_seconds": 3725.0},
            {"url": "http://b:6066", "partitions": [3, 4, 6], "recovering": True, "uptime_seconds": 42.0},
        ],
        "throughput": {"bytes_per_second": 3_250_000.0, "files_per_second": 1.25},
        "files": {"assembling": 1, "completed": 1204, "failed": 2},
        "transfers": {"ready": 0, "pending": 0, "transferring": 1, "done": 0, "valid": 1200, "invalid": 0, "failed": 1},
        "in_flight": [
            {
                "file": "lab/run7/scan.tif",
                "chunks_received": 5,
                "chunk_count": 20,
                "file_size": 20_000_000,
                "idle_seconds": 3.2,
            },
        ],
        "recent_failures": [
            {"file": "lab/old.bin", "finished_at": 100.0, "reason": "file hash mismatch"},
            {"file": "lab/" + "deep/" * 20 + "end.bin", "finished_at": 300.0, "reason": "expired"},
        ],
        "transfer_failures": [
            {
                "file_id": "lab/y.bin",
                "state": "failed",
                "updated_at": 200.0,
                "message": "EndpointConnectionError",
                "retries": 3,
                "max_retries": 3,
            },
        ],
    }
    return {**base, **changes}


def test_the_status_shows_workers_counts_files_in_flight_and_failures_newest_first():
    lines = render_status(summary()).splitlines()
    assert lines[0] == "filestream: 2 of 2 workers answering, 8 partitions"
    assert "  http://a:6066  partitions 0-2,5,7  up 1h02m" in lines
    assert "  http://b:6066  partitions 3-4,6  up 42s  recovering" in lines
    assert "THROUGHPUT  3.2 MB/s, 1.2 files/s (last minute)" in lines
    assert "FILES       assembling 1  completed 1204  failed 2" in lines
    assert "TRANSFERS   ready 0  pending 0  transferring 1  done 0  valid 1200  invalid 0  failed 1" in lines
    flight = next(line for line in lines if "scan.tif" in line)
    assert "[#####...............] 5/20 chunks  20.0 MB  idle 3s" in flight
    failures = lines[lines.index("LATEST FAILURES") + 1 :]
    assert [line.split()[0] for line in failures] == ["file", "s3", "file"]  # by time: 300, 200, 100
    assert failures[0].strip().startswith("file      …") and "end.bin  expired" in failures[0]  # the end kept
    assert "lab/y.bin" in failures[1] and "EndpointConnectionError (retries 3/3)" in failures[1]
    assert "file hash mismatch" in failures[2]


def test_a_silent_worker_is_named_with_its_error_and_fails_the_worker_list():
    silent = {"url": "http://c:6066", "error": "TimeoutError: "}
    with_silent = summary(workers=[*summary()["workers"], silent])
    text = render_status(with_silent)
    assert text.startswith("filestream: 2 of 3 workers answering, 8 partitions")
    assert "  http://c:6066  NOT ANSWERING: TimeoutError: " in text.splitlines()
    assert silent_workers(with_silent) == [silent]
    assert worker_urls(summary()) == ["http://a:6066", "http://b:6066"]
    with pytest.raises(WorkerUnavailable, match="http://c:6066 does not answer"):
        worker_urls(with_silent)


def test_no_worker_answering_shows_only_that():
    text = render_status({"workers": [{"url": "http://a:6066", "error": "refused"}]})
    assert (
        text
        == "filestream: 0 of 1 workers answering, 0 partitions\n\nWORKERS\n  http://a:6066  NOT ANSWERING: refused\n"
    )


def test_nothing_in_flight_and_no_failures():
    text = render_status(summary(in_flight=[], recent_failures=[], transfer_failures=[], files={"assembling": 0}))
    assert "IN FLIGHT (0)\n\nLATEST FAILURES\n  none\n" in text
