"""The csv-stats example reproducer, run as the worker runs it."""

from __future__ import annotations

import threading

import orjson

import examples.csv_stats  # noqa: F401  (registers csv-stats)
from processors.api import registry
from processors.execution import run_registration
from processors.results import ResultStatus
from tests.processors.completed import completed_event

LOCK = threading.Lock()


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
