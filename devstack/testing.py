"""What the end-to-end tests, the fault campaign and the benchmarks share to drive a pipeline from outside.

Chunk records as an uploader sends them (or a broken or hostile one could), producing them,
the environment of one isolated pipeline on a stack, waiting for files, reading files and
objects back, a worker's paged views, and the real upload command as a child process.
Nothing here imports the app: these helpers talk to a pipeline as its users do, through the
broker, the output directory, S3 and the web views.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import subprocess
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import boto3
from aiokafka import AIOKafkaProducer

from devstack.processes import child_env
from devstack.stack import DEV_AWS_CREDENTIALS, DevStack
from devstack.worker import FAUST, PROJECT_ROOT, Worker
from models.chunk import FileChunk, digest, encode_chunk

KiB, MiB = 1024, 1024**2
Message = tuple[bytes, bytes]  # (key, value) on the chunk topic

# --- chunk records --------------------------------------------------------------------------


def make_chunks(
    data: bytes,
    *,
    source: str = "lab",
    path: str = "run/data.bin",
    chunk_size: int = 4,
    generation: int | None = 1,
) -> list[FileChunk]:
    """Every chunk of one generation of a file, in order, as the upload command builds them."""
    file_hash = hashlib.sha256(data).hexdigest()
    count = max(1, -(-len(data) // chunk_size))
    return [
        FileChunk(
            source=source,
            path=path,
            generation=generation,
            file_hash=file_hash,
            file_size=len(data),
            chunk_count=count,
            index=index,
            offset=index * chunk_size,
            chunk_hash=digest(data[index * chunk_size : (index + 1) * chunk_size]),
            payload=data[index * chunk_size : (index + 1) * chunk_size],
        )
        for index in range(count)
    ]


def as_message(chunk: FileChunk) -> Message:
    """The record as an uploader keys it.  The key is built from the text, unchecked, so hostile names travel too."""
    return f"{chunk.source}/{chunk.path}".encode("utf-8", "surrogatepass"), encode_chunk(chunk)


def as_messages(chunks: Iterable[FileChunk]) -> list[Message]:
    return [as_message(chunk) for chunk in chunks]


def file_messages(
    files: Mapping[str, bytes], *, source: str = "lab", chunk_size: int, generation: int | None = 1
) -> list[Message]:
    """The records of several files (path → content), file after file."""
    return as_messages(
        chunk
        for path, data in files.items()
        for chunk in make_chunks(data, source=source, path=path, chunk_size=chunk_size, generation=generation)
    )


# --- producing ------------------------------------------------------------------------------


def bootstrap_servers(env: Mapping[str, str]) -> str:
    """``host:port,…`` of the pipeline's broker (``FILESTREAM_BROKER`` holds Faust URLs)."""
    return ",".join(url.strip().removeprefix("kafka://") for url in env["FILESTREAM_BROKER"].split(","))


async def produce_chunks(env: Mapping[str, str], records: Sequence[Message]) -> None:
    """Send (key, value) pairs to the pipeline's chunk topic in order, each acknowledged (acks=all)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(env), acks="all", max_request_size=16 * MiB)
    await producer.start()
    try:
        futures = [await producer.send(env["FILESTREAM_CHUNKS_TOPIC"], key=key, value=value) for key, value in records]
        for future in futures:
            await future
    finally:
        await producer.stop()


def produce_paced(env: Mapping[str, str], batches: list[list[Message]], pause: float) -> threading.Thread:
    """Produce the batches from a background thread, ``pause`` seconds apart, while the caller does other things."""

    def run() -> None:
        for batch in batches:
            asyncio.run(produce_chunks(env, batch))
            time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- one pipeline ---------------------------------------------------------------------------


class Stack(Protocol):
    """What a pipeline needs of a stack (a DevStack, or a test's own): where its broker and S3 are."""

    def env(self) -> dict[str, str]: ...


def pipeline_env(stack: Stack, base_dir: Path, **overrides: str) -> dict[str, str]:
    """Settings for one isolated pipeline on a shared stack: its own app id, topics, dirs and bucket.

    Short group timeouts: a SIGKILLed worker's partitions move once its session expires (and the
    development broker holds every JoinGroup for half the session timeout).
    """
    tag = uuid.uuid4().hex[:8]
    return {
        **stack.env(),
        "FILESTREAM_APP_ID": f"fs-test-{tag}",
        "FILESTREAM_CHUNKS_TOPIC": f"chunks-{tag}",
        "FILESTREAM_COMPLETED_TOPIC": f"completed-{tag}",
        "FILESTREAM_METADATA_TOPIC": f"metadata-{tag}",
        "FILESTREAM_OUTPUT_DIR": str(base_dir / "output"),
        "FILESTREAM_DATA_DIR": str(base_dir / "client-data"),
        "FILESTREAM_S3_BUCKET": f"bucket-{tag}",
        "FILESTREAM_PARTITIONS": "4",
        "FILESTREAM_SESSION_TIMEOUT": "6",
        "FILESTREAM_HEARTBEAT_INTERVAL": "1",
        "FILESTREAM_LOG_LEVEL": "debug",
        **overrides,
    }


# --- waiting --------------------------------------------------------------------------------


def poll(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Return the first truthy value of ``condition()``; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


def wait_for_files(
    output_dir: Path,
    expected: Mapping[str, bytes],
    *,
    stall_timeout: float = 60.0,
    workers: Sequence[Worker] = (),
) -> None:
    """Wait until every expected file is present with the expected bytes.

    Gives up when nothing new has arrived for ``stall_timeout`` seconds, naming the files
    still missing or wrong (fail clearly, never hang).
    """
    done: set[str] = set()
    last_progress = time.monotonic()
    while True:
        for name, data in expected.items():
            if name in done:
                continue
            path = output_dir / name
            try:
                if path.stat().st_size == len(data) and path.read_bytes() == data:
                    done.add(name)
                    last_progress = time.monotonic()
            except (FileNotFoundError, NotADirectoryError):
                pass
        if len(done) == len(expected):
            return
        if time.monotonic() - last_progress > stall_timeout:
            missing = sorted(set(expected) - done)
            wrong = [name for name in missing if (output_dir / name).exists()]
            logs = "\n".join(f"--- {worker.name}\n{worker.log_tail(30)}" for worker in workers)
            raise AssertionError(
                f"{len(missing)} of {len(expected)} files missing after {stall_timeout}s without progress: "
                f"{missing[:10]} (present with wrong bytes: {wrong[:10]})\n{logs}"
            )
        time.sleep(0.2)


# --- reading back ---------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    file_digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MiB):
            file_digest.update(block)
    return file_digest.hexdigest()


def s3_client(stack: DevStack) -> Any:
    """A boto3 client of the stack's S3 server itself (not through any relay in front of it)."""
    credentials = {name.lower(): value for name, value in DEV_AWS_CREDENTIALS.items()}
    return boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1", **credentials)


def s3_sha256(client: Any, bucket: str, key: str) -> str | None:
    """SHA-256 of the stored object's bytes (read back in full), None if there is no such object or bucket."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except (client.exceptions.NoSuchKey, client.exceptions.NoSuchBucket):
        return None
    object_digest = hashlib.sha256()
    for block in body.iter_chunks(MiB):
        object_digest.update(block)
    return object_digest.hexdigest()


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


# --- the upload command ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStats:
    peak_rss: int  # bytes
    cpu_seconds: float  # user + system

    def __sub__(self, earlier: ProcessStats) -> ProcessStats:
        """CPU spent since ``earlier``; the peak stays the peak."""
        return ProcessStats(self.peak_rss, self.cpu_seconds - earlier.cpu_seconds)


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
        assert self.returncode is not None  # noqa: S101  (set by _reaped)
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


# --- several workers ------------------------------------------------------------------------

SPLIT_TIMEOUT = 240.0
# A split must hold this long: workers joining one after another trigger several rebalances.
SPLIT_STABLE_FOR = 3.0


def assigned_partitions(workers: Sequence[Worker]) -> dict[str, list[int]] | None:
    """Each worker's partitions of the chunk topic, if every one of them is ready."""
    split = {}
    for worker in workers:
        health = json_or_none(worker, "/filestream/health/")
        if not health or not health["ready"]:
            return None
        split[worker.name] = health["assigned_partitions"]
    return split


def is_complete_split(split: dict[str, list[int]] | None, partitions: int) -> TypeGuard[dict[str, list[int]]]:
    """Every partition owned by exactly one worker, and no worker idle (there are enough partitions)."""
    if split is None:
        return False
    owned = sorted(partition for assigned in split.values() for partition in assigned)
    return owned == list(range(partitions)) and all(split.values())


def wait_for_split(workers: Sequence[Worker], partitions: int, timeout: float = SPLIT_TIMEOUT) -> dict[str, list[int]]:
    """Until the workers own every partition between them, each some, and the split has held for a while."""
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    last = None
    while time.monotonic() < deadline:
        split = assigned_partitions(workers)
        if is_complete_split(split, partitions) and split == last:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= SPLIT_STABLE_FOR:
                return split
        else:
            stable_since = None
        last = split
        time.sleep(0.3)
    raise TimeoutError(f"the partitions did not split among {len(workers)} workers within {timeout:.0f}s: {last}")
