"""The built-in metadata reproducer's message and the two examples, run as the worker runs them."""

from __future__ import annotations

import csv
import threading

import orjson

import examples.csv_stats  # noqa: F401  (registers csv-stats)
from examples.checksum_report import REPORT_NAME
from processors.api import Registry, registry
from processors.execution import run_registration
from processors.metadata import metadata_message
from processors.results import ResultStatus
from tests.processors.completed import completed_event

LOCK = threading.Lock()
TOP_LEVEL_FIELDS = {
    "source",
    "path",
    "generation",
    "size",
    "sha256",
    "first_chunk_at",
    "finished_at",
    "content_type",
    "content",
}


def test_metadata_message_has_the_documented_fields(tmp_path):
    data = b"time,temp\n0,20.5\n1,21.0\n"
    event = completed_event(tmp_path, data, path="run/temps.csv", generation=42)
    local = Registry()
    local.reproducer(name="metadata", topic="meta")(metadata_message)
    outcome = run_registration(local.get("metadata"), event, LOCK)
    assert outcome.status is ResultStatus.PROCESSED
    message = orjson.loads(outcome.message)
    assert set(message) == TOP_LEVEL_FIELDS
    identity = (message["source"], message["path"], message["generation"], message["size"])
    assert identity == ("lab", "run/temps.csv", 42, len(data))
    assert (message["sha256"], message["first_chunk_at"], message["finished_at"]) == (event.file_hash, 1000.0, 1001.5)
    assert message["content_type"] == message["content"]["content_type"] == "text/csv"
    assert message["content"]["columns"] == ["time", "temp"] and message["content"]["row_count"] == 2


def test_checksum_report_appends_one_csv_line_per_file(tmp_path):
    output = tmp_path / "out"
    events = [completed_event(output, f"file {i}".encode(), path=f"run/{i}.bin", generation=i) for i in range(3)]
    report = registry.get("checksum-report")
    for event in events:
        assert run_registration(report, event, LOCK).status is ResultStatus.PROCESSED
    with open(output / REPORT_NAME, newline="") as lines:
        rows = list(csv.reader(lines))
    assert rows[0] == ["file", "generation", "size", "sha256"]
    assert rows[1:] == [[f"lab/run/{i}.bin", str(i), "6", e.file_hash] for i, e in enumerate(events)]


def test_csv_stats_streams_numeric_column_statistics(tmp_path):
    data = b"\xef\xbb\xbfname,x,y\na,1,10\nb,2,n/a\n\nc,6,inf\n"
    event = completed_event(tmp_path, data, path="stats.csv")
    outcome = run_registration(registry.get("csv-stats"), event, LOCK)
    assert outcome.status is ResultStatus.PROCESSED
    message = orjson.loads(outcome.message)
    assert (message["path"], message["rows"]) == ("stats.csv", 3)
    assert message["columns"] == [
        {"name": "name", "count": 0, "min": None, "max": None, "mean": None},
        {"name": "x", "count": 3, "min": 1.0, "max": 6.0, "mean": 3.0},
        {"name": "y", "count": 1, "min": 10.0, "max": 10.0, "mean": 10.0},
    ]


def test_csv_stats_of_an_empty_file_is_a_recorded_failure(tmp_path):
    event = completed_event(tmp_path, b"", path="empty.csv")
    outcome = run_registration(registry.get("csv-stats"), event, LOCK)
    assert (outcome.status, outcome.reason) == (ResultStatus.FAILED, "the reproducer returned no message")
