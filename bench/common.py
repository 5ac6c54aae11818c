"""What the benchmark scripts share: the broker choice, generated workloads, process figures, waiting, tables."""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack.stack import BROKERS, DEFAULT_BROKER, DevStack
from devstack.testing import (
    ProcessStats,
    json_or_none,
    pipeline_env,
    s3_client,
    s3_sha256,
    sha256_file,
    upload_command,
)
from devstack.worker import PROJECT_ROOT, Worker
from errors import FilestreamError
from settings import load_settings

log = logging.getLogger("bench")

KiB, MiB = 1024, 1024**2
MB, GB = 1e6, 1e9
CHUNK_SIZE = MiB  # the upload command's default
SOURCE = "bench"  # the uploads' --source
STALL_TIMEOUT = 180.0
BENCH_VAR = PROJECT_ROOT / "var" / "bench"
# Workers under a saturating load: a longer session than the tests' keeps heartbeats from missing.
BENCH_SETTINGS = {
    "FILESTREAM_SESSION_TIMEOUT": "10",
    "FILESTREAM_HEARTBEAT_INTERVAL": "1",
    "FILESTREAM_LOG_LEVEL": "warning",
}
# The test stack's Kafka rolls small segments and compacts within seconds, so that compaction can be
# watched in a test.  A benchmark restores Kafka's defaults (1 GiB segments, rolled after 7 days): as
# on a production broker, nothing is compacted within a run, and the records on the topics after the
# run are every record the broker received.
PRODUCTION_SEGMENTS = {"log.segment.bytes": str(1024**3), "log.roll.ms": str(7 * 24 * 3600 * 1000)}
# The message limit filestream gives its topics for its default chunk size: every system's topic gets it.
TOPIC_MAX_MESSAGE_BYTES = load_settings({}).max_message_bytes


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default=DEFAULT_BROKER,
        help=f"Apache Kafka or the Tansu development broker (default {DEFAULT_BROKER})",
    )


def bench_stack(log_dir: Path, broker: str) -> DevStack:
    """A fresh embedded stack (not started) for one run: a broker that keeps what it received, and S3."""
    stack = DevStack(log_dir=log_dir, broker=broker)
    if stack.kafka is not None:
        stack.kafka.extra_properties = {**stack.kafka.extra_properties, **PRODUCTION_SEGMENTS}
    return stack


def bench_env(stack: DevStack, work: Path, partitions: int, **overrides: str) -> dict[str, str]:
    """One pipeline on the stack, output in ``work/output``, with the benchmarks' worker settings."""
    return pipeline_env(stack, work, FILESTREAM_PARTITIONS=str(partitions), **BENCH_SETTINGS, **overrides)


def numbered(prefix: str, count: int, size: int) -> dict[str, int]:
    """``count`` files of ``size`` bytes named ``prefix/0000.bin``, ``prefix/0001.bin``, …"""
    return {f"{prefix}/{number:04d}.bin": size for number in range(count)}


WORKLOADS = {
    "full": {**numbered("small", 500, 64 * KiB), **numbered("medium", 40, 4 * MiB), **numbered("large", 1, 512 * MiB)},
    "quick": {**numbered("small", 50, 64 * KiB), **numbered("medium", 8, 4 * MiB), **numbered("large", 1, 32 * MiB)},
}


def write_files(root: Path, sizes: Mapping[str, int], seed: int = 1) -> None:
    """Seeded random content throughout: no two files share bytes a compressing client could exploit."""
    rng = random.Random(seed)
    for name, size in sizes.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for offset in range(0, size, 8 * MiB):
                handle.write(rng.randbytes(min(8 * MiB, size - offset)))


def fresh_dir(path: Path) -> Path:
    """An empty directory: state left by an earlier run is meaningless on a fresh stack."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def prune(work: Path) -> None:
    """Delete the bulk a successful run leaves (files received, data dirs, sources: gigabytes), keeping its logs."""
    for path in work.iterdir():
        if path.is_dir() and not path.name.endswith("logs"):
            shutil.rmtree(path)


@dataclass(frozen=True)
class Workload:
    sizes: dict[str, int]
    source_dir: Path
    hashes: dict[str, str]

    @classmethod
    def generate(cls, sizes: dict[str, int], source_dir: Path, seed: int) -> Workload:
        write_files(source_dir, sizes, seed)
        return cls(sizes, source_dir, {name: sha256_file(source_dir / name) for name in sizes})

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    @property
    def record_count(self) -> int:
        return sum(max(1, math.ceil(size / CHUNK_SIZE)) for size in self.sizes.values())

    def describe(self) -> str:
        groups = Counter(self.sizes.values())
        parts = " + ".join(f"{count} x {_size_text(size)}" for size, count in sorted(groups.items()))
        return f"{len(self.sizes)} files, {self.total_bytes / MB:.1f} MB ({parts})"


def _size_text(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def process_stats(pid: int) -> ProcessStats:
    """Peak RSS (VmHWM) and CPU seconds of a live process, its threads included."""
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ProcessStats(peak, ticks / os.sysconf("SC_CLK_TCK"))


def stack_stats(stack: DevStack) -> dict[str, ProcessStats]:
    """The broker's figures (summed over its nodes) and the S3 server's."""
    nodes = [process_stats(process.pid) for process in stack.broker_processes()]
    stats = {"broker": ProcessStats(max(node.peak_rss for node in nodes), sum(node.cpu_seconds for node in nodes))}
    if stack.s3.process is not None:
        stats["S3 server"] = process_stats(stack.s3.process.pid)
    return stats


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Before any client touches it (Kafka's auto-create is off, Tansu's would pick 4 partitions); big records fit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        config = {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


async def topic_bytes(bootstrap: str, quiet_seconds: float = 2.0) -> dict[str, int]:
    """Key, value and header bytes of every record on every topic but the broker's own (``__…``), by topic.

    Read from the start until the broker has sent nothing for ``quiet_seconds``: the development
    broker's end offsets can fall short of its last record, so they cannot say when to stop.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(topic for topic in await admin.list_topics() if not topic.startswith("__"))
        descriptions = await admin.describe_topics(topics) if topics else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(description["topic"], partition["partition"])
        for description in descriptions
        for partition in description["partitions"]
    ]
    sizes = dict.fromkeys(topics, 0)
    if not partitions:
        return sizes
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * MiB,
        fetch_max_bytes=64 * MiB,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        while batches := await consumer.getmany(timeout_ms=int(quiet_seconds * 1000), max_records=10_000):
            for partition, records in batches.items():
                sizes[partition.topic] += sum(
                    max(0, record.serialized_key_size)
                    + max(0, record.serialized_value_size)
                    + sum(len(key) + len(value or b"") for key, value in record.headers)
                    for record in records
                )
        return sizes
    finally:
        await consumer.stop()


async def wait_for_group_coordinator(bootstrap: str, topic: str) -> None:
    """Join a consumer group once: a fresh Kafka broker creates its offsets topic on the first group.

    Clients that ask for a group's offsets before that get NotCoordinatorError and, if they do not
    retry (OpenMSIStream's downloader does not), stop.
    """
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="bench-coordinator-probe")
    await consumer.start()
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no consumer group could join on {bootstrap} within 60 s")
            await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()


def valid_transfers(workers: Iterable[Worker]) -> int:
    """Files valid in S3, summed over the workers (each answers for the partitions it owns)."""
    total = 0
    for worker in workers:
        page = json_or_none(worker, "/filestream/transfers/?state=valid&limit=1")
        total += page["total"] if page else 0
    return total


class Arrivals:
    """Which expected files are in a directory at their full size; cheap to poll (stat only)."""

    def __init__(self, directory: Path, sizes: Mapping[str, int]) -> None:
        self.directory = directory
        self.pending = dict(sizes)

    def poll(self) -> int:
        """How many are still missing."""
        for name, size in list(self.pending.items()):
            try:
                if (self.directory / name).stat().st_size == size:
                    del self.pending[name]
            except FileNotFoundError:
                pass
        return len(self.pending)


class Stall(FilestreamError, TimeoutError):
    """Nothing changed for too long: something was lost, or something hangs."""


class ProgressClock:
    """Fails with a clear message when a measured quantity stops changing for ``stall_timeout`` seconds.

    A broker or a peer can, rarely, never deliver one message: a run must end with a diagnosis, not hang.
    """

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self.last_change = time.monotonic()
        self.last_value: object = None

    def observe(self, value: object, describe: Callable[[], str]) -> None:
        if value != self.last_value:
            self.last_value, self.last_change = value, time.monotonic()
        elif time.monotonic() - self.last_change > self.stall_timeout:
            raise Stall(f"no progress for {self.stall_timeout:.0f}s: {describe()}")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]], text_columns: int = 1) -> str:
    """A plain-text table: the first ``text_columns`` columns left-aligned, the figures right-aligned."""
    cells = [[str(value) for value in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            value.ljust(width) if column < text_columns else value.rjust(width)
            for column, (value, width) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def load_average() -> float:
    return os.getloadavg()[0]


STAGES = {
    "sent": "sent (broker acked)",
    "received": "on disk",
    "in_s3": "valid in S3",
}


@dataclass
class TimedUpload:
    stages: dict[str, float]  # stage of STAGES → seconds from the upload command's start
    uploader: ProcessStats | None
    stalled: str = ""  # what was delivered when progress stopped; empty if every stage was reached


def timed_upload(
    workload: Workload,
    env: Mapping[str, str],
    workers: Sequence[Worker],
    work: Path,
    on_poll: Callable[[float, Mapping[str, float]], None] | None = None,
    stall_timeout: float = STALL_TIMEOUT,
) -> TimedUpload:
    """Run the real upload command on the workload and time the stages until every file is valid in S3.

    ``on_poll(seconds since the start, stages so far)`` runs four times a second, e.g. to kill
    a worker mid-run.  Files are on disk once present at full size: the worker renames each into
    place only after its hash matched.  Progress stopping for ``stall_timeout`` seconds ends the
    run with the stages reached so far and what was delivered.
    """
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / SOURCE
    started = time.monotonic()
    upload = upload_command(env, workload.source_dir, SOURCE, work / "uploader", work / "upload.log")
    stages: dict[str, float] = {}
    try:
        arrivals = Arrivals(output, workload.sizes)
        clock = ProgressClock(stall_timeout)
        valid, next_poll = 0, 0.0
        while "in_s3" not in stages:
            now = time.monotonic()
            if "sent" not in stages and upload.finished():
                if upload.returncode != 0:
                    raise RuntimeError(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
                stages["sent"] = now - started
            if "received" not in stages and not arrivals.poll():
                stages["received"] = now - started
            if now >= next_poll:
                next_poll = now + 0.25
                if on_poll:
                    on_poll(now - started, stages)
                valid = valid_transfers(workers)
                if valid == len(workload.sizes):
                    stages["in_s3"] = now - started
            clock.observe((len(arrivals.pending), valid, upload.returncode), str)
            time.sleep(0.05)
    except Stall:
        files = len(workload.sizes)
        stalled = (
            f"stalled for {stall_timeout:.0f} s at {time.monotonic() - started:.0f} s: "
            f"{files - len(arrivals.pending)}/{files} files on disk, {valid}/{files} valid in S3"
        )
        logs = "\n".join(f"--- {worker.name}\n{worker.log_tail(20)}" for worker in workers)
        log.warning("%s (e.g. missing %s); worker logs:\n%s", stalled, sorted(arrivals.pending)[:3], logs)
        return TimedUpload(stages, None, stalled)
    finally:
        upload.kill()
    return TimedUpload(stages, upload.stats)


def verify_delivery(workload: Workload, stack: DevStack, env: Mapping[str, str]) -> str:
    """Read every output file and every S3 object back: delivered means byte-identical in both places."""
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / SOURCE
    bucket = load_settings(env).s3_bucket

    def on_disk(name: str) -> str | None:
        return sha256_file(output / name) if (output / name).exists() else None

    identical = sum(on_disk(name) == digest for name, digest in workload.hashes.items())
    client = s3_client(stack)
    in_s3 = sum(s3_sha256(client, bucket, f"{SOURCE}/{name}") == digest for name, digest in workload.hashes.items())
    files = len(workload.hashes)
    return f"{identical}/{files} byte-identical on disk, {in_s3}/{files} in S3"
