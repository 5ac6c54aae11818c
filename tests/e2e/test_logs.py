"""FILESTREAM_LOG_FORMAT=json: a real worker and a real upload command write one JSON object per line."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from devstack.processes import ManagedProcess, child_env
from devstack.testing import wait_for_files
from devstack.worker import FAUST, PROJECT_ROOT, Worker

pytestmark = pytest.mark.e2e


def json_lines(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # fails on any line that is not one JSON object
        assert {"time", "level", "logger", "message"} <= set(record), record
        datetime.fromisoformat(record["time"])
        records.append(record)
    return records


def test_worker_and_upload_log_json_lines_and_lines_about_a_file_name_it(pipeline, tmp_path):
    env = {**pipeline, "FILESTREAM_LOG_FORMAT": "json"}
    worker = Worker(env, tmp_path / "worker-data")
    # As the service unit runs it: --quiet leaves out Faust's startup banner, the one thing that is not a log line.
    worker.process = ManagedProcess(
        "worker",
        [FAUST, "-A", "app", "--quiet", "worker", "-l", "info"],
        log_path=tmp_path / "worker.log",
        env=child_env(worker.env),
        cwd=PROJECT_ROOT,
    )
    try:
        worker.wait_ready()
        source = tmp_path / "instrument"
        files = {f"run/{i}.dat": os.urandom(5000 + i) for i in range(3)}
        for name, data in files.items():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(data)
        upload = subprocess.run(
            [FAUST, "-A", "app", "upload", str(source), "--source", "lab"],
            env=child_env(env),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upload.returncode == 0, upload.stderr
        wait_for_files(Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab", files, workers=[worker])
    finally:
        worker.stop()

    sent = [record for record in json_lines(upload.stderr) if record["message"].startswith("sent ")]
    assert sorted(record["file"] for record in sent) == sorted(f"lab/{name}" for name in files)
    assert all(isinstance(record["generation"], int) and record["level"] == "INFO" for record in sent)
    assert "upload summary: 3 file(s) sent" in upload.stdout  # the command's report stays plain text

    worker_records = json_lines((tmp_path / "worker.log").read_text())
    assert len(worker_records) > 20
    loggers = {record["logger"] for record in worker_records}
    assert "faust.worker" in loggers and any(name.startswith("agents.") for name in loggers), loggers
    assert any("Ready" in record["message"] for record in worker_records)
