"""What the benchmark scripts share: generated workloads, process figures, worker settings, waiting, tables."""

from __future__ import annotations

import hashlib
import math
import os
import random
import resource
import shutil
import subprocess
import time
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack.processes import child_env
from devstack.stack import DEV_AWS_CREDENTIALS, DevStack
from devstack.worker import FAUST, PROJECT_ROOT, Worker
from settings import load_settings

KiB, MiB = 1024, 1024**2
MB = 1e6
CHUNK_SIZE = MiB  # the upload command's default
SOURCE = "bench"  # the uploads' --source
STALL_TIMEOUT = 180.0
BENCH_VAR = PROJECT_ROOT / "var" / "bench"
# The dev broker holds every JoinGroup for half the session timeout: short sessions start workers fast.
GROUP_TIMEOUTS = {"FILESTREAM_SESSION_TIMEOUT": "10", "FILESTREAM_HEARTBEAT_INTERVAL": "1"}


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
    """An empty directory: the dev broker starts empty, so state left by an earlier run is meaningless."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def prune(work: Path) -> None:
    """Delete the bulk a successful run leaves (files received, data dirs, sources: gigabytes), keeping its logs."""
    for path in work.iterdir():
        if path.is_dir() and not path.name.endswith("logs"):
            shutil.rmtree(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


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


@dataclass(frozen=True)
class ProcessStats:
    peak_rss: int  # bytes
    cpu_seconds: float  # user + system

    def __sub__(self, earlier: ProcessStats) -> ProcessStats:
        """CPU spent since ``earlier``; the peak stays the peak."""
        return ProcessStats(self.peak_rss, self.cpu_seconds - earlier.cpu_seconds)


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
    """The broker's and the S3 server's figures, by process name."""
    return {process.name: process_stats(process.pid) for process in stack.processes}


class ChildProcess:
    """A command whose own peak RSS and CPU are known once it exits (``wait4`` reaps it with its rusage)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            self.popen = subprocess.Popen(
                list(argv),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(env),
                cwd=PROJECT_ROOT,
            )
        self.log_path = log_path
        self.returncode: int | None = None
        self.stats: ProcessStats | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def finished(self) -> bool:
        if self.returncode is None:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
        return self.returncode is not None

    def wait(self) -> int:
        if self.returncode is None:
            _, status, usage = os.wait4(self.popen.pid, 0)
            self._reaped(status, usage)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            self.popen.kill()
            self.wait()

    def _reaped(self, status: int, usage: resource.struct_rusage) -> None:
        self.returncode = self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.stats = ProcessStats(usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def upload_command(
    env: Mapping[str, str], source_dir: Path, source: str, uploader_dir: Path, log_path: Path, *options: str
) -> ChildProcess:
    """The real ``faust -A app upload``, with its registry in ``uploader_dir``."""
    return ChildProcess(
        [FAUST, "-A", "app", "upload", str(source_dir), "--source", source, *options],
        env={**env, "FILESTREAM_DATA_DIR": str(uploader_dir)},
        log_path=log_path,
    )


def worker_env(stack: DevStack, output_dir: Path, partitions: int, **overrides: str) -> dict[str, str]:
    return {
        **stack.env(),
        **GROUP_TIMEOUTS,
        "FILESTREAM_OUTPUT_DIR": str(output_dir),
        "FILESTREAM_PARTITIONS": str(partitions),
        "FILESTREAM_LOG_LEVEL": "warning",
        **overrides,
    }


def broker_address(stack: DevStack) -> str:
    """The broker's host:port, as Kafka clients other than Faust take it."""
    return stack.broker_url.removeprefix("kafka://")


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Before any client touches it: the dev broker would auto-create it with 4 partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def s3_client(stack: DevStack) -> Any:
    credentials = {name.lower(): value for name, value in DEV_AWS_CREDENTIALS.items()}
    return boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1", **credentials)


def s3_sha256(client: Any, bucket: str, key: str) -> str | None:
    """SHA-256 of the stored object's bytes (read back in full), None if there is no such object."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except client.exceptions.NoSuchKey:
        return None
    digest = hashlib.sha256()
    for block in body.iter_chunks(MiB):
        digest.update(block)
    return digest.hexdigest()


def json_or_none(worker: Worker, path: str) -> Any:
    """A worker view's JSON, or None while the worker does not answer (starting, restoring, killed)."""
    try:
        return worker.get_json(path)
    except (OSError, urllib.error.URLError, ValueError):
        return None


def view_rows(worker: Worker, path: str, rows_name: str) -> list[dict[str, Any]] | None:
    """Every row of a paged list view (``path`` without limit/offset), or None if the worker does not answer."""
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    separator = "&" if "?" in path else "?"
    while offset is not None:
        page = json_or_none(worker, f"{path}{separator}limit=1000&offset={offset}")
        if page is None:
            return None
        rows += page[rows_name]
        offset = page["next_offset"]
    return rows


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


class Stall(TimeoutError):
    """Nothing changed for too long: something was lost, or something hangs."""


class ProgressClock:
    """Fails with a clear message when a measured quantity stops changing for ``stall_timeout`` seconds.

    The dev broker can, rarely, never deliver one message: a run must end with a diagnosis, not hang.
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
    uploader: ProcessStats


def timed_upload(
    workload: Workload,
    env: Mapping[str, str],
    workers: Sequence[Worker],
    work: Path,
    on_poll: Callable[[float, Mapping[str, float]], None] | None = None,
) -> TimedUpload:
    """Run the real upload command on the workload and time the stages until every file is valid in S3.

    ``on_poll(seconds since the start, stages so far)`` runs four times a second, e.g. to kill
    a worker mid-run.
    Files are on disk once present at full size: the worker renames each into place only
    after its hash matched.
    """
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / SOURCE
    started = time.monotonic()
    upload = upload_command(env, workload.source_dir, SOURCE, work / "uploader", work / "upload.log")
    try:
        arrivals = Arrivals(output, workload.sizes)
        clock = ProgressClock(STALL_TIMEOUT)
        stages: dict[str, float] = {}
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
            clock.observe(
                (len(arrivals.pending), valid, upload.returncode),
                lambda valid=valid: (
                    f"{len(arrivals.pending)} files not on disk (e.g. {sorted(arrivals.pending)[:3]}), "
                    f"{valid} of {len(workload.sizes)} valid in S3; worker logs:\n"
                    + "\n".join(f"--- {worker.name}\n{worker.log_tail(20)}" for worker in workers)
                ),
            )
            time.sleep(0.05)
    finally:
        upload.kill()
    assert upload.stats is not None
    return TimedUpload(stages, upload.stats)


def verify_delivery(workload: Workload, stack: DevStack, env: Mapping[str, str]) -> str:
    """Read every output file and every S3 object back: delivered means byte-identical in both places."""
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / SOURCE
    bucket = load_settings(env).s3_bucket
    on_disk = sum(sha256_file(output / name) == digest for name, digest in workload.hashes.items())
    client = s3_client(stack)
    in_s3 = sum(s3_sha256(client, bucket, f"{SOURCE}/{name}") == digest for name, digest in workload.hashes.items())
    files = len(workload.hashes)
    return f"{on_disk}/{files} byte-identical on disk, {in_s3}/{files} in S3"
