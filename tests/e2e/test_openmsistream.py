"""OpenMSIStream's own uploader writes into the test broker; filestream reassembles, transfers and describes the files.

The uploader is the real ``openmsistream`` package, in a virtual environment of its own
(``var/openmsistream-venv``, created once and reused), so its pins never touch ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import unquote

import boto3
import msgpack
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack.processes import ManagedProcess, child_env
from devstack.stack import DEV_AWS_CREDENTIALS, DevStack
from devstack.testing import poll, wait_for_files
from devstack.worker import PROJECT_ROOT, Worker

pytestmark = pytest.mark.e2e

log = logging.getLogger("tests")

OPENMSISTREAM = "openmsistream==1.8.8"
VENV = PROJECT_ROOT / "var" / "openmsistream-venv"
SOURCE = "instrument-7"
CHUNK = 64 * 1024
# Not the pipeline's 4: an OpenMSIStream topic keeps whatever count its lab gave it.
OPENMSISTREAM_PARTITIONS = 3


@pytest.fixture(scope="session")
def openmsistream_venv() -> Path:
    """A virtual environment with the real OpenMSIStream uploader, built on first use."""
    installed = VENV / f".installed-{OPENMSISTREAM}"
    if not installed.exists():
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = subprocess.run(
            [VENV / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", OPENMSISTREAM],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip install {OPENMSISTREAM} failed:\n{pip.stdout}\n{pip.stderr}")
        installed.touch()
        log.info("created %s with %s in %.0fs", VENV, OPENMSISTREAM, time.monotonic() - started)
    return VENV


@pytest.fixture
def omsi_pipeline(pipeline: dict[str, str]) -> dict[str, str]:
    pipeline.update(
        FILESTREAM_OPENMSISTREAM_TOPIC=f"omsi-{pipeline['FILESTREAM_APP_ID']}",
        FILESTREAM_CHUNK_CODEC="auto",
        FILESTREAM_OPENMSISTREAM_SOURCE=SOURCE,
    )
    asyncio.run(create_topic(pipeline, pipeline["FILESTREAM_OPENMSISTREAM_TOPIC"], OPENMSISTREAM_PARTITIONS))
    return pipeline


def bootstrap(env: Mapping[str, str]) -> str:
    return env["FILESTREAM_BROKER"].removeprefix("kafka://")


async def create_topic(env: Mapping[str, str], name: str, partitions: int) -> None:
    """Before anyone touches it: the dev broker would auto-create it with its own count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(env))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


@pytest.fixture
def start_uploader(openmsistream_venv: Path, omsi_pipeline: dict[str, str], tmp_path: Path) -> Iterator:
    """OpenMSIStream's ``DataFileUploadDirectory`` on a directory, as a lab runs it, with its shipped settings."""
    config = tmp_path / "openmsistream.config"
    config.write_text(
        f"[broker]\nbootstrap.servers = {bootstrap(omsi_pipeline)}\n\n"
        "[producer]\nbatch.size = 2000000\nlinger.ms = 100\ncompression.type = lz4\n"
        "key.serializer = StringSerializer\nvalue.serializer = DataFileChunkSerializer\n"
    )
    uploaders: list[ManagedProcess] = []

    def start(directory: Path) -> ManagedProcess:
        argv = [
            str(openmsistream_venv / "bin" / "DataFileUploadDirectory"),
            str(directory),
            "--config",
            str(config),
            "--topic_name",
            omsi_pipeline["FILESTREAM_OPENMSISTREAM_TOPIC"],
            "--chunk_size",
            str(CHUNK),
            "--upload_existing",
            "--watchdog_lag_time",
            "1",
            "--logger_file_path",
            str(tmp_path / "openmsistream-logs"),
        ]
        uploader = ManagedProcess(
            "openmsistream-uploader", argv, log_path=tmp_path / "openmsistream-uploader.log", env=child_env({})
        )
        uploaders.append(uploader)
        return uploader

    yield start
    for uploader in uploaders:
        uploader.stop()


async def produce(env: Mapping[str, str], topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(env), acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()


async def read_topic(env: Mapping[str, str], topic: str, partitions: int, timeout: float = 5.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(env), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values += [record.value for record in records]
        return values
    finally:
        await consumer.stop()


def wait_valid_transfers(worker: Worker, names: set[str]) -> dict[str, dict]:
    def valid() -> dict[str, dict] | None:
        try:
            rows = worker.get_json("/filestream/transfers/?state=valid&limit=1000")["transfers"]
        except OSError:
            return None
        by_name = {row["file_id"].removeprefix(f"{SOURCE}/"): row for row in rows}
        return by_name if names <= set(by_name) else None

    return poll(valid, 60, "valid S3 transfers")


def wait_metadata(env: Mapping[str, str], names: set[str]) -> dict[str, dict]:
    def described() -> dict[str, dict] | None:
        values = asyncio.run(read_topic(env, env["FILESTREAM_METADATA_TOPIC"], int(env["FILESTREAM_PARTITIONS"]), 1.0))
        by_path = {message["path"]: message for message in map(orjson.loads, values)}
        return by_path if names <= set(by_path) else None

    return poll(described, 60, "a metadata message per file")


def write_file(path: Path, data: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def garbled_and_hostile_records() -> list[tuple[bytes, bytes]]:
    """A cut-off msgpack record, and a well-formed one whose subdir climbs out of the output directory."""
    data = b"evil"
    digest = hashlib.sha512(data).digest()
    hostile = msgpack.packb(["passwd", digest, digest, 0, 1, 1, "../../..", "", data, 0.0], use_bin_type=True)
    return [(b"junk_chunk_1_of_1", b"\x9a\xa6passwd\xc4"), (b"__.._passwd_chunk_1_of_1", hostile)]


def test_an_openmsistream_uploader_feeds_the_pipeline(
    start_worker, start_uploader, omsi_pipeline, dev_stack: DevStack, tmp_path
):
    env = omsi_pipeline
    now = time.time()
    files = {
        "scan.csv": b"t,signal\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(20000)),
        "run-1/raw/frame.bin": os.urandom(17 * CHUNK + 5),
        "run-1/raw/exact.bin": os.urandom(3 * CHUNK),
        "run-1/notes.txt": "Résumé of run 1, µ-scale\n".encode(),
        "run-2/deep/er/still/one-byte.dat": b"\x00",
        "same-size.bin": os.urandom(4 * CHUNK),
        "grows.bin": os.urandom(2 * CHUNK),
        "shrinks.bin": os.urandom(3 * CHUNK),
    }
    upload_dir = tmp_path / "instrument"
    for name, data in files.items():
        write_file(upload_dir / name, data, now - 60)
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / SOURCE

    worker = start_worker()
    worker.wait_ready()
    started = time.monotonic()
    uploader = start_uploader(upload_dir)
    wait_for_files(output, files, workers=[worker])
    log.info(
        "%d OpenMSIStream files reassembled %.1fs after the uploader started", len(files), time.monotonic() - started
    )
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()) == sorted(files)

    # Downstream handles them like native uploads: valid S3 objects with filestream's metadata, metadata messages.
    transfers = wait_valid_transfers(worker, set(files))
    s3 = boto3.client(
        "s3",
        endpoint_url=dev_stack.s3_url,
        region_name="us-east-1",
        **{name.lower(): value for name, value in DEV_AWS_CREDENTIALS.items()},
    )
    for name, data in files.items():
        head = s3.head_object(Bucket=env["FILESTREAM_S3_BUCKET"], Key=f"{SOURCE}/{name}", ChecksumMode="ENABLED")
        assert head["ContentLength"] == len(data) == transfers[name]["size"]
        assert head["Metadata"]["filestream-sha256"] == hashlib.sha256(data).hexdigest()
        assert unquote(head["Metadata"]["filestream-path"]) == name
        assert "filestream-generation" not in head["Metadata"]
    described = wait_metadata(env, set(files))
    for name, data in files.items():
        assert (described[name]["source"], described[name]["size"]) == (SOURCE, len(data))
        assert described[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert described["scan.csv"]["content_type"] == "text/csv"

    # Junk on the OpenMSIStream topic is refused with its reason, and the worker carries on.
    asyncio.run(produce(env, env["FILESTREAM_OPENMSISTREAM_TOPIC"], garbled_and_hostile_records()))

    # Edits the uploader sends again follow the directional policy with OpenMSIStream's mtime tie-break.
    edited = {
        "same-size.bin": os.urandom(4 * CHUNK),  # as many chunks, newer mtime: delivered
        "grows.bin": files["grows.bin"] + os.urandom(2 * CHUNK),  # more chunks: delivered
        "shrinks.bin": os.urandom(CHUNK),  # fewer chunks: skipped, the delivered version stays
    }
    for name, data in edited.items():
        write_file(upload_dir / name, data, now)
    wait_for_files(output, {name: edited[name] for name in ("same-size.bin", "grows.bin")}, workers=[worker])
    skipped = f"of {SOURCE}/shrinks.bin: different content with 1 chunks, fewer than the current 3"
    poll(lambda: skipped in worker.log_tail(2000), 60, "the shrunk file to be skipped")
    assert (output / "shrinks.bin").read_bytes() == files["shrinks.bin"]

    worker_log = worker.log_tail(2000)
    assert "garbled msgpack, not an OpenMSIStream chunk record" in worker_log
    assert "bad file identity" in worker_log
    assert not list(tmp_path.rglob("passwd"))
    assert worker.process.alive() and uploader.alive()
