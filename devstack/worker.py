"""A `faust -A app worker` subprocess with its own data dir and web port, and a readiness probe."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.processes import ManagedProcess, child_env, free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).parent / "faust")


class Worker:
    """One `faust -A app worker` subprocess with its own data dir and web port."""

    def __init__(self, env: Mapping[str, str], data_dir: Path, name: str = "worker", web_port: int = 0) -> None:
        self.name = name
        self.web_port = web_port or free_port()
        self.data_dir = data_dir
        self.env = {**env, "FILESTREAM_DATA_DIR": str(data_dir), "FILESTREAM_WEB_PORT": str(self.web_port)}
        self.log_path = data_dir.parent / f"{name}.log"
        self.process: ManagedProcess | None = None

    def start(self) -> Worker:
        self.process = ManagedProcess(
            self.name,
            [FAUST, "-A", "app", "worker", "-l", "info"],
            log_path=self.log_path,
            env=child_env(self.env),
            cwd=PROJECT_ROOT,
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        # S310: always the http URL of the worker this process started.
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:  # noqa: S310
            return json.load(response)

    def health(self) -> dict | None:
        try:
            return self.get_json("/filestream/health/", timeout=2.0)
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_ready(self, timeout: float = 90.0) -> dict:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.process.log_tail()}")
            state = self.health()
            if state and state["ready"] and state["assigned_partitions"]:
                return state
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.process.log_tail()}")

    def stop(self) -> int:
        return self.process.stop() if self.process else 0

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def log_tail(self, lines: int = 60) -> str:
        return self.process.log_tail(lines) if self.process else ""
