"""The checksum-report example processor, run as the worker runs it."""

from __future__ import annotations

import csv
import threading

from examples.checksum_report import REPORT_NAME
from processors.api import registry
from processors.execution import run_registration
from processors.results import ResultStatus
from tests.processors.completed import completed_event

LOCK = threading.Lock()


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
