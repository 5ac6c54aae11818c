"""Child processes that never outlive their parent.

The development stack, the demo and the tests all start servers (broker, S3,
workers) as subprocesses.  Each child gets ``PR_SET_PDEATHSIG`` so the kernel
kills it if the parent dies without cleaning up (even by SIGKILL), and
:meth:`ManagedProcess.stop` escalates from SIGTERM to SIGKILL, because a Faust
worker can hang on SIGTERM after an agent crashed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ManagedProcess:
    """A subprocess with a name, a log file and a reliable stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Open for the child's whole life, closed by stop()/kill(): no with-block can span that.
        self._log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
        log.debug("started %s (pid %d): %s", name, self.popen.pid, " ".join(argv))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for_port(self, host: str, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log_path}")
            if port_accepts(host, port):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not accept connections on {host}:{port} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self._log_file.close()

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        self.terminate()
        return self.wait_stopped(grace)

    def terminate(self) -> None:
        """SIGTERM, without waiting: :meth:`wait_stopped` waits, so several processes can stop at once."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def wait_stopped(self, grace: float) -> int:
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs of SIGTERM; killing it", self.name, grace)
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
        self._log_file.close()
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_together(processes: Iterable[ManagedProcess], grace: float = 15.0) -> None:
    """SIGTERM to all first, then wait: members of a cluster stop faster together than one by one."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.wait_stopped(max(0.1, deadline - time.monotonic()))


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
