"""``python -m devstack stack|demo|kafka``: the embedded stack, the one-command demo, Kafka's own tools.

``stack`` runs a broker (Apache Kafka by default, or ``--broker tansu``) and a moto S3 server
until Ctrl-C / SIGTERM, and prints the environment a worker or client needs to reach them.
``demo`` runs the main job end to end on such a stack: a worker, an upload of a generated
sample directory, and a summary of what arrived where; then it stops everything (or keeps
running with --keep-running).  ``kafka TOOL ARGS...`` runs one of Apache Kafka's command-line
tools (console-consumer, topics, consumer-groups, ...) from the stack's Kafka jars.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from client.kafka_security import client_options
from devstack.kafka import TOOLS, KafkaUnavailable, tool_argv
from devstack.processes import child_env
from devstack.sample import write_sample
from devstack.stack import BROKERS, DEFAULT_BROKER, DEFAULT_BROKER_PORT, DEFAULT_S3_PORT, DevStack
from devstack.worker import FAUST, PROJECT_ROOT, Worker
from settings import Settings, load_settings

log = logging.getLogger("devstack")


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into the same orderly shutdown as Ctrl-C, so no child outlives us."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _wait_forever(message: str) -> None:
    log.info("%s; press Ctrl-C to stop", message)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log.info("stopping")


def run_stack(args: argparse.Namespace) -> int:
    var = args.var / (args.broker if args.nodes == 1 else f"{args.broker}-{args.nodes}")
    if args.broker == "tansu":
        if args.nodes != 1:
            raise SystemExit("the development broker runs one node only (--nodes is for Kafka)")
        # The development broker keeps topics in memory: whatever an earlier run left is stale.
        shutil.rmtree(var, ignore_errors=True)
    # Several Kafka nodes take free ports (each has a client and a controller port): the stack prints them.
    port = args.broker_port if args.nodes == 1 else None
    stack = DevStack(log_dir=var, broker=args.broker, kafka_nodes=args.nodes, broker_port=port, s3_port=args.s3_port)
    with stack:
        exports = "\n".join(f"export {name}={value}" for name, value in stack.env().items())
        print(f"# broker {stack.broker_url} ({args.broker}), S3 {stack.s3_url}; to use them:\n{exports}", flush=True)
        _wait_forever(f"{args.broker} broker and S3 running (data in {var})")
    return 0


def run_kafka_tool(args: argparse.Namespace) -> int:
    return subprocess.run(tool_argv(args.tool, args.tool_args), check=False).returncode


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _wait_for_output(sample_dir: Path, output_dir: Path, names: list[str], timeout: float) -> dict[str, bool]:
    """Wait until every sample file is in the output directory; report which arrived intact."""
    deadline = time.monotonic() + timeout
    arrived: dict[str, bool] = {}
    while time.monotonic() < deadline and len(arrived) < len(names):
        for name in names:
            target = output_dir / name
            if name not in arrived and target.exists() and target.stat().st_size == (sample_dir / name).stat().st_size:
                arrived[name] = _sha256(target) == _sha256(sample_dir / name)
        time.sleep(0.3)
    return arrived


def _wait_for_transfers(worker: Worker, files: list[str], timeout: float) -> dict[str, str]:
    """The S3 transfer state of each file, once all are valid (or when the time is up)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            rows = worker.get_json("/filestream/transfers/?limit=1000")["transfers"]
        except (OSError, KeyError, ValueError):
            rows = []
        states = {row["file_id"]: row["state"] for row in rows}
        if all(states.get(name) == "valid" for name in files):
            break
        time.sleep(0.3)
    return states


async def _read_metadata(settings: Settings, files: list[str], timeout: float) -> dict[str, dict]:
    """The metadata message of each file, read from the start of the metadata topic, as the worker's settings say."""
    consumer = AIOKafkaConsumer(
        settings.metadata_topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        **client_options(settings),
    )
    await consumer.start()
    messages: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not set(files) <= set(messages):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    messages[record.key.decode()] = orjson.loads(record.value)
    finally:
        await consumer.stop()
    return messages


def run_demo(args: argparse.Namespace) -> int:
    var = args.var
    # Every demo is a first run: a new broker, new topics, empty tables and output.
    shutil.rmtree(var, ignore_errors=True)
    sample_dir, output_dir = var / "sample", var / "output"
    sizes = write_sample(sample_dir)
    stack = DevStack(log_dir=var / "logs", broker=args.broker, broker_port=args.broker_port, s3_port=args.s3_port)
    with stack:
        env = {
            **stack.env(),
            "FILESTREAM_OUTPUT_DIR": str(output_dir),
            "FILESTREAM_SESSION_TIMEOUT": "10",
            "FILESTREAM_HEARTBEAT_INTERVAL": "1",
        }
        worker = Worker(env, var / "worker", web_port=args.web_port).start()
        try:
            log.info("starting a worker (web %s, log %s)", worker.url, worker.log_path)
            worker.wait_ready(timeout=120)
            started = time.monotonic()
            upload = subprocess.run(
                [FAUST, "-A", "app", "upload", str(sample_dir), "--source", "demo"],
                env=child_env({**env, "FILESTREAM_DATA_DIR": str(var / "uploader")}),
                cwd=PROJECT_ROOT,
            )
            if upload.returncode != 0:
                log.error("upload failed with exit status %d", upload.returncode)
                return 1
            arrived = _wait_for_output(sample_dir, output_dir / "demo", sorted(sizes), timeout=120)
            reassembled = time.monotonic() - started
            identities = [f"demo/{name}" for name in sorted(sizes)]
            transfers = _wait_for_transfers(worker, identities, timeout=120)
            transferred = time.monotonic() - started
            metadata = asyncio.run(_read_metadata(load_settings(child_env(env)), identities, 30))
            print(f"\n{'file':28} {'bytes':>9}  {'output dir':15} {'S3':8} metadata")
            for name, identity in zip(sorted(sizes), identities, strict=True):
                verdict = {True: "byte-identical", False: "DIFFERENT", None: "missing"}[arrived.get(name)]
                content = metadata.get(identity, {}).get("content", {})
                print(
                    f"{name:28} {sizes[name]:>9}  {verdict:15} {transfers.get(identity, 'missing'):8} "
                    f"{content.get('format', 'missing')} {content.get('content_type', '')}"
                )
            total = sum(sizes.values())
            print(
                f"\n{len(sizes)} files, {total / 1e6:.1f} MB: reassembled in {output_dir / 'demo'} after "
                f"{reassembled:.1f}s, valid in s3://filestream/demo/ after {transferred:.1f}s, "
                f"metadata on topic filestream-metadata"
            )
            ok = (
                len(arrived) == len(sizes)
                and all(arrived.values())
                and all(transfers.get(identity) == "valid" for identity in identities)
                and set(identities) <= set(metadata)
            )
            if ok and args.keep_running:
                _wait_forever(f"worker {worker.url} running on broker {stack.broker_url}")
            return 0 if ok else 1
        except KeyboardInterrupt:
            return 130
        finally:
            worker.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    _stop_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stack = commands.add_parser("stack", help="run the broker and the S3 server until stopped")
    stack.add_argument("--nodes", type=int, choices=(1, 3), default=1, help="Kafka nodes: 3 for a replicated cluster")
    demo = commands.add_parser("demo", help="run the main job end to end on the embedded stack")
    demo.add_argument("--keep-running", action="store_true", help="keep the stack and worker up after the summary")
    demo.add_argument("--web-port", type=int, default=6066)
    for command, var in ((stack, "stack"), (demo, "dev")):
        command.add_argument("--broker", choices=BROKERS, default=DEFAULT_BROKER, help="Apache Kafka or Tansu")
        command.add_argument("--broker-port", type=int, default=DEFAULT_BROKER_PORT)
        command.add_argument("--s3-port", type=int, default=DEFAULT_S3_PORT)
        command.add_argument("--var", type=Path, default=PROJECT_ROOT / "var" / var, help="working directory")
    kafka = commands.add_parser("kafka", help="run one of Apache Kafka's tools, e.g. kafka console-consumer --help")
    kafka.add_argument("tool", choices=sorted(TOOLS))
    kafka.add_argument("tool_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    run = {"stack": run_stack, "demo": run_demo, "kafka": run_kafka_tool}[args.command]
    try:
        return run(args)
    except KafkaUnavailable as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
