"""Kafka's own tools read filestream's topics on the stack's broker as the README shows: kcat, the console consumer."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.stack import DevStack
from devstack.testing import file_messages, produce_chunks, wait_for_files
from devstack.worker import PROJECT_ROOT

pytestmark = pytest.mark.e2e

FILES = {"tools/a.csv": b"x,y\n1,2\n", "tools/b.txt": b"hello"}


@pytest.fixture
def delivered(start_worker, pipeline: dict[str, str]) -> dict[str, str]:
    worker = start_worker()
    worker.wait_ready()
    asyncio.run(produce_chunks(pipeline, file_messages(FILES, chunk_size=4)))
    wait_for_files(Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab", FILES, workers=[worker])
    return pipeline


def test_kcat_reads_the_metadata_topic(delivered: dict[str, str], dev_stack: DevStack) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is missing: `./dev test` installs Debian's kcat package (apt-get install -y kcat)")
    command = [kcat, "-b", dev_stack.bootstrap_servers, "-C", "-t", delivered["FILESTREAM_METADATA_TOPIC"]]
    command += ["-o", "beginning", "-c", str(len(FILES)), "-q", "-f", "%k\t%s\n"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    messages = dict(line.split("\t", 1) for line in result.stdout.splitlines())
    assert set(messages) == {f"lab/{name}" for name in FILES}
    assert json.loads(messages["lab/tools/a.csv"])["content"]["format"] == "csv"


def test_kafkas_console_consumer_reads_the_completed_topic(delivered: dict[str, str], dev_stack: DevStack) -> None:
    command = [sys.executable, "-m", "devstack", "kafka", "console-consumer", "--bootstrap-server"]
    command += [dev_stack.bootstrap_servers, "--topic", delivered["FILESTREAM_COMPLETED_TOPIC"], "--from-beginning"]
    command += ["--max-messages", str(len(FILES)), "--property", "print.key=true", "--timeout-ms", "30000"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line]
    events = {key: json.loads(value) for key, value in lines}
    assert set(events) == {f"lab/{name}" for name in FILES}, result.stdout
    assert {event["status"] for event in events.values()} == {"completed"}
