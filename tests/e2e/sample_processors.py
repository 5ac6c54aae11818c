"""Processors for ``tests/e2e/test_processors.py``: the worker loads this module through ``FILESTREAM_PROCESSORS``.

The test steers them through environment variables naming files: line-log appends to
``PROCESSOR_TEST_LINE_LOG`` and fails on files named poison while ``PROCESSOR_TEST_POISON``
exists; gate holds the files under ``gated/`` while ``PROCESSOR_TEST_GATE`` exists; row-count
publishes to ``PROCESSOR_TEST_ROW_COUNT_TOPIC``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from processors.api import CompletedFile, processor, reproducer

LINE_LOG = Path(os.environ["PROCESSOR_TEST_LINE_LOG"])
POISON = Path(os.environ["PROCESSOR_TEST_POISON"])
GATE = Path(os.environ["PROCESSOR_TEST_GATE"])
GATE_TIMEOUT = 60.0


@processor(name="line-log")
def append_line(file: CompletedFile, lock: threading.Lock) -> None:
    if "poison" in file.relative_path and POISON.exists():
        raise RuntimeError(f"{file.relative_path} is poisoned")
    with lock, open(LINE_LOG, "a", encoding="utf-8") as log:
        log.write(f"{file.file_id} {file.generation}\n")


@processor(name="gate", match=r"^lab/gated/")
def wait_at_gate(file: CompletedFile, lock: threading.Lock) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT
    while GATE.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@reproducer(name="row-count", match=r"\.csv$", topic=os.environ["PROCESSOR_TEST_ROW_COUNT_TOPIC"])
def count_rows(file: CompletedFile, lock: threading.Lock) -> dict | None:
    with file.open() as reader:
        lines = sum(1 for _ in reader)
    return {"file": str(file.file_id), "lines": lines} if lines else None
