"""The built-in metadata reproducer's message, run as the worker runs it."""

from __future__ import annotations

import threading

import orjson

from processors.api import Registry
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
