"""Apache Kafka for the embedded stack: KRaft brokers (combined controller + broker) started with ``java`` on loopback.

The jars come from Maven Central as declared in ``devstack/pom.xml``: :func:`kafka_classpath`
runs ``mvn dependency:build-classpath`` once per version and keeps the class path in
``var/kafka/<version>/classpath.txt`` (the jars themselves stay in Maven's local repository).
Each node's storage is formatted with Kafka's own storage tool before its first start.

:class:`KafkaCluster` runs one node (the default of the stack, the demo and the tests) or
three (``nodes=3``, for the broker-kill fault scenario), with settings that make a test
cluster quick without changing what clients see: no initial rebalance delay, small log
segments and an eager log cleaner so compaction can be watched within seconds, and topic
auto-creation off as on a well-run production cluster (every filestream client creates
the topics it needs).  Extra listeners (SASL_SSL with SCRAM users and an authorizer, for
the authentication tests) come in through :class:`Listener` and ``extra_properties``:
:func:`tls_listener_properties` and :func:`authorizer_properties` write those properties, and
:meth:`KafkaCluster.run_tool` runs Kafka's own tools (ACLs) against the cluster.  The
inter-broker and controller listeners stay PLAINTEXT on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import ManagedProcess, free_port, port_accepts, stop_together
from errors import DevStackError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
POM = Path(__file__).with_name("pom.xml")
STARTED_LINE = "Kafka Server started"
# The JVM's default heap is a quarter of the machine's memory; a test broker needs far less.
JVM_OPTIONS = ("-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true")

# Entry points of the console tools, by the name of the script Kafka's distribution runs them with.
TOOLS = {
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "configs": "org.apache.kafka.tools.ConfigCommand",
    "acls": "org.apache.kafka.tools.AclCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "storage": "kafka.tools.StorageTool",
}


class KafkaUnavailable(DevStackError, RuntimeError):
    """Java or Maven is missing, or the broker's artifacts cannot be resolved."""


def kafka_version() -> str:
    text = POM.read_text()
    return text.split("<kafka.version>", 1)[1].split("</kafka.version>", 1)[0].strip()


def require_tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise KafkaUnavailable(
            f"Apache Kafka needs `{name}`, which is not installed: install Debian's {package} package "
            f"(`./dev` installs it when run as root), or use the development broker (--broker tansu)"
        )
    return found


def kafka_classpath(var_dir: Path = PROJECT_ROOT / "var") -> str:
    """The class path of the broker and its tools; resolved with Maven the first time (a few seconds)."""
    require_tool("java", "openjdk-17-jre-headless")
    cache = var_dir / "kafka" / kafka_version()
    classpath_file = cache / "classpath.txt"
    stamp = cache / "pom.sha256"
    pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if classpath_file.exists() and stamp.exists() and stamp.read_text() == pom_digest:
        classpath = classpath_file.read_text().strip()
        if all(Path(jar).exists() for jar in classpath.split(":")):
            return classpath
    mvn = require_tool("mvn", "maven")
    cache.mkdir(parents=True, exist_ok=True)
    log.info("resolving Apache Kafka %s from Maven Central (once)", kafka_version())
    command = [mvn, "-q", "-B", "-f", str(POM), "dependency:build-classpath", f"-Dmdep.outputFile={classpath_file}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaUnavailable(
            f"Maven could not resolve Apache Kafka {kafka_version()} (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    stamp.write_text(pom_digest)
    return classpath_file.read_text().strip()


def tool_argv(tool: str, args: Sequence[str], classpath: str | None = None) -> list[str]:
    """``java`` running one of Kafka's command-line tools (:data:`TOOLS`) with ``args``."""
    if tool not in TOOLS:
        raise KafkaUnavailable(f"no Kafka tool named {tool!r}; known: {', '.join(sorted(TOOLS))}")
    java = require_tool("java", "openjdk-17-jre-headless")
    return [java, "-Xmx512m", "-cp", classpath or kafka_classpath(), TOOLS[tool], *args]


@dataclass(frozen=True)
class Listener:
    """One client listener of every node: ``name`` (as in ``listeners=``), its security protocol, per-node ports."""

    name: str
    protocol: str
    ports: tuple[int, ...]


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user created when the storage is formatted (StorageTool ``--add-scram``)."""

    name: str
    password: str
    mechanism: str = "SCRAM-SHA-512"

    @property
    def storage_credential(self) -> str:
        return f"{self.mechanism}=[name={self.name},password={self.password}]"

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# Connections on the PLAINTEXT inter-broker and controller listeners authenticate as ANONYMOUS; with an
# authorizer on, the brokers and the controller must be allowed everything, or the node cannot even start.
INTERNAL_PRINCIPAL = "User:ANONYMOUS"


def tls_listener_properties(listener: Listener, keystore: Path, *, client_ca: Path | None = None) -> dict[str, str]:
    """Broker properties of a TLS listener (SSL or SASL_SSL): a PEM key store; SCRAM for SASL_SSL.

    ``keystore`` holds the PKCS#8 private key followed by its certificate chain, as Kafka's
    ``ssl.keystore.type=PEM`` reads it.  With ``client_ca``, clients must present a certificate
    that CA signed (mutual TLS).
    """
    prefix = f"listener.name.{listener.name.lower()}."
    properties = {f"{prefix}ssl.keystore.type": "PEM", f"{prefix}ssl.keystore.location": str(keystore)}
    if listener.protocol == "SASL_SSL":
        properties[f"{prefix}sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
        for mechanism in SCRAM_MECHANISMS:
            properties[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
    if client_ca is not None:
        properties[f"{prefix}ssl.truststore.type"] = "PEM"
        properties[f"{prefix}ssl.truststore.location"] = str(client_ca)
        properties[f"{prefix}ssl.client.auth"] = "required"
    return properties


def authorizer_properties(super_users: Sequence[str]) -> dict[str, str]:
    """Kafka's KRaft authorizer: only ``super_users`` (and the nodes themselves) may do what no ACL allows."""
    return {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": ";".join([INTERNAL_PRINCIPAL, *super_users])}


@dataclass
class KafkaCluster:
    """``nodes`` KRaft nodes on loopback, each controller and broker, with its own data dir and log."""

    work_dir: Path
    nodes: int = 1
    listeners: Sequence[Listener] = ()
    extra_properties: Mapping[str, str] = field(default_factory=dict)
    # StorageTool --add-scram arguments, e.g. "SCRAM-SHA-512=[name=alice,password=secret]".
    scram_credentials: Sequence[str] = ()
    # Fixed ports (``./dev stack``: 9092 and 9093); free ones when not given.
    client_ports: tuple[int, ...] = ()
    controller_ports: tuple[int, ...] = ()
    processes: dict[int, ManagedProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client_ports = self.client_ports or tuple(free_port() for _ in range(self.nodes))
        self.controller_ports = self.controller_ports or tuple(free_port() for _ in range(self.nodes))
        self.cluster_id = str(uuid.uuid4())  # any 16 bytes, base64url-encoded, will do; see _cluster_id
        self._classpath: str | None = None
        self._log_offsets: dict[int, int] = {}  # where each node's log stood at its latest launch

    # -- addresses -------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{port}" for port in self.client_ports)

    @property
    def broker_url(self) -> str:
        return ",".join(f"kafka://{HOST}:{port}" for port in self.client_ports)

    def listener_bootstrap(self, name: str) -> str:
        listener = next(listener for listener in self.listeners if listener.name == name)
        return ",".join(f"{HOST}:{port}" for port in listener.ports)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> KafkaCluster:
        started = time.monotonic()
        self._classpath = kafka_classpath()
        cluster_id = _cluster_id(self.cluster_id)
        for node in range(self.nodes):
            self._format(node, cluster_id)
        for node in range(self.nodes):
            self._launch(node)
        try:
            for node in range(self.nodes):
                self._wait_started(node)
        except BaseException:
            self.stop()
            raise
        log.info(
            "Apache Kafka %s: %d node(s) at %s, started in %.1fs",
            kafka_version(),
            self.nodes,
            self.bootstrap_servers,
            time.monotonic() - started,
        )
        return self

    def kill_node(self, node: int) -> None:
        """SIGKILL one node, as a machine failure would; its data stays for :meth:`restart_node`."""
        self.processes.pop(node).kill()

    def restart_node(self, node: int) -> None:
        self._launch(node)
        self._wait_started(node)

    def stop(self) -> None:
        stop_together(self.processes.values())
        self.processes.clear()

    def run_tool(self, tool: str, args: Sequence[str]) -> str:
        """Run one of Kafka's tools (:data:`TOOLS`) against the PLAINTEXT listener; its output, or KafkaUnavailable."""
        command = tool_argv(tool, ["--bootstrap-server", self.bootstrap_servers, *args], self._classpath)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # The tools print their whole client configuration first; the reason is at the end.
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise KafkaUnavailable(f"kafka {tool} {' '.join(args)} failed (exit {result.returncode}):\n{output}")
        return result.stdout

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- one node --------------------------------------------------------------------------

    def node_dir(self, node: int) -> Path:
        return self.work_dir / f"kafka-{node + 1}"

    def _properties(self, node: int) -> dict[str, str]:
        listeners = [f"PLAINTEXT://{HOST}:{self.client_ports[node]}"]
        advertised = list(listeners)
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        for listener in self.listeners:
            address = f"{listener.name}://{HOST}:{listener.ports[node]}"
            listeners.append(address)
            advertised.append(address)
            protocols.append(f"{listener.name}:{listener.protocol}")
        voters = ",".join(f"{index + 1}@{HOST}:{port}" for index, port in enumerate(self.controller_ports))
        replication = str(min(3, self.nodes))
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(node + 1),
            "controller.quorum.voters": voters,
            "listeners": ",".join([*listeners, f"CONTROLLER://{HOST}:{self.controller_ports[node]}"]),
            "advertised.listeners": ",".join(advertised),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(self.node_dir(node) / "data"),
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": str(min(2, self.nodes)),
            "auto.create.topics.enable": "false",
            # A test cluster: a consumer group forms at once instead of after 3 s.
            "group.initial.rebalance.delay.ms": "0",
            # Compaction within seconds, so its effect on changelogs can be measured in a test.
            "log.segment.bytes": str(16 * 1024**2),
            "log.cleaner.backoff.ms": "1000",
            "log.cleaner.min.cleanable.ratio": "0.01",
            "log.roll.ms": "10000",
        }
        properties.update(self.extra_properties)
        return properties

    def _format(self, node: int, cluster_id: str) -> None:
        node_dir = self.node_dir(node)
        node_dir.mkdir(parents=True, exist_ok=True)
        config = node_dir / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in self._properties(node).items()))
        if (node_dir / "data" / "meta.properties").exists():
            return  # formatted before: the node restarts with its topics and offsets
        scram = [argument for credential in self.scram_credentials for argument in ("--add-scram", credential)]
        # "=": a base64url id may start with "-", which the tool's argument parser would take for an option.
        arguments = ["format", f"--cluster-id={cluster_id}", "-c", str(config), *scram]
        command = tool_argv("storage", arguments, self._classpath)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaUnavailable(
                f"formatting KRaft storage of node {node + 1} failed:\n{result.stdout}{result.stderr}"
            )

    def _launch(self, node: int) -> None:
        java = require_tool("java", "openjdk-17-jre-headless")
        assert self._classpath is not None, "start() resolves the class path"  # noqa: S101
        config = self.node_dir(node) / "server.properties"
        log_path = self.node_dir(node) / "server.log"
        self._log_offsets[node] = log_path.stat().st_size if log_path.exists() else 0
        self.processes[node] = ManagedProcess(
            f"kafka-{node + 1}",
            [java, *JVM_OPTIONS, "-cp", self._classpath, "kafka.Kafka", str(config)],
            log_path=log_path,
        )

    def _wait_started(self, node: int, timeout: float = 90.0) -> None:
        process = self.processes[node]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise KafkaUnavailable(f"{process.name} exited; see {process.log_path}:\n{process.log_tail(30)}")
            with process.log_path.open("rb") as log_file:
                log_file.seek(self._log_offsets[node])
                started = STARTED_LINE.encode() in log_file.read()
            if started and port_accepts(HOST, self.client_ports[node]):
                return
            time.sleep(0.1)
        raise KafkaUnavailable(f"{process.name} did not start within {timeout}s:\n{process.log_tail(30)}")


def _cluster_id(seed: str) -> str:
    """A KRaft cluster id: 16 bytes in URL-safe base64 without padding, as ``kafka-storage random-uuid`` prints."""
    return base64.urlsafe_b64encode(uuid.UUID(seed).bytes).decode().rstrip("=")
