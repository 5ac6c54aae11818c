"""S3 transfer through the real broker, real worker processes and a real moto S3 server."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import unquote

import boto3
import pytest

from devstack.processes import ManagedProcess, child_env, free_port
from devstack.stack import DEV_AWS_CREDENTIALS, HOST, moto_server_argv
from devstack.testing import file_messages, poll, produce_chunks, wait_for_files
from devstack.worker import FAUST, PROJECT_ROOT
from models.events import COMPLETED, FileEvent
from storage.s3 import crc32_base64

pytestmark = pytest.mark.e2e

MiB = 1024**2
CHUNK = 256 * 1024
# Small parts, so a file of a few MiB goes up in several; quick retries, so an outage test is short.
S3_OVERRIDES = {
    "FILESTREAM_S3_PART_SIZE": "5MiB",
    "FILESTREAM_S3_MULTIPART_THRESHOLD": "5MiB",
    "FILESTREAM_S3_RETRY_BACKOFF": "0.5",
    "FILESTREAM_S3_RETRY_BACKOFF_MAX": "2",
}


@pytest.fixture
def s3_pipeline(pipeline: dict[str, str]) -> dict[str, str]:
    pipeline.update(S3_OVERRIDES)
    return pipeline


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=DEV_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DEV_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def transfers(worker, state: str | None = None) -> list[dict]:
    query = f"?state={state}&limit=1000" if state else "?limit=1000"
    try:
        return worker.get_json(f"/filestream/transfers/{query}")["transfers"]
    except OSError:
        return []


def wait_valid(worker, names: set[str], timeout: float = 60.0) -> dict[str, dict]:
    def all_valid():
        valid = {row["file_id"].removeprefix("lab/"): row for row in transfers(worker, "valid")}
        return valid if names <= set(valid) else None

    try:
        return poll(all_valid, timeout, f"{len(names)} valid transfers")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nrecords: {transfers(worker)}\n{worker.log_tail(40)}") from None


def spooled_files(worker) -> int:
    """File generations whose bytes the worker still keeps for S3 (storage/spool.py)."""
    return worker.get_json("/filestream/tables/digest/")["spool"]["entries"]


def assert_object(client, bucket: str, name: str, data: bytes, generation: int = 1) -> None:
    key = f"lab/{name}"
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ChecksumCRC32"] == crc32_base64(zlib.crc32(data))
    assert head["Metadata"]["filestream-sha256"] == hashlib.sha256(data).hexdigest()
    assert head["Metadata"]["filestream-generation"] == str(generation)
    assert head["Metadata"]["filestream-source"] == "lab"
    assert unquote(head["Metadata"]["filestream-path"]) == name
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data


async def produce_events(env: dict[str, str], events: list[FileEvent]) -> None:
    """Completed-file events sent directly, as a redelivery or a late stale event would arrive."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=env["FILESTREAM_BROKER"].removeprefix("kafka://"), acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(env["FILESTREAM_COMPLETED_TOPIC"], key=event.file_id.key, value=event.dumps())
    finally:
        await producer.stop()


def test_files_land_verified_with_metadata_and_their_spooled_bytes_are_released(start_worker, s3_pipeline, dev_stack):
    files = {
        "empty.bin": b"",
        "small.txt": os.urandom(1000),
        "one-chunk.bin": os.urandom(CHUNK),
        "below-threshold.bin": os.urandom(5 * MiB - 1),
        "multipart.bin": os.urandom(12 * MiB + 3),
    }
    worker = start_worker()
    worker.wait_ready()
    asyncio.run(produce_chunks(s3_pipeline, file_messages(files, chunk_size=CHUNK)))

    records = wait_valid(worker, set(files))
    client = s3_client(dev_stack.s3_url)
    bucket = s3_pipeline["FILESTREAM_S3_BUCKET"]
    for name, data in files.items():
        assert_object(client, bucket, name, data)
        assert records[name]["checksum"] == crc32_base64(zlib.crc32(data))
        assert records[name]["retries"] == 0
    assert f"{12 * MiB + 3} bytes in 3 part(s)" in worker.log_tail(300)
    assert f"{5 * MiB - 1} bytes in 1 part(s)" in worker.log_tail(300)
    poll(lambda: spooled_files(worker) == 0, 30, "the spooled bytes to be released")
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_newer_generation_replaces_the_object_and_stale_or_repeated_events_change_nothing(
    start_worker, s3_pipeline, dev_stack
):
    old, new = os.urandom(3 * CHUNK), os.urandom(2 * CHUNK + 5)
    worker = start_worker()
    worker.wait_ready()
    asyncio.run(produce_chunks(s3_pipeline, file_messages({"edit.bin": old}, generation=1, chunk_size=CHUNK)))
    wait_valid(worker, {"edit.bin"})
    asyncio.run(produce_chunks(s3_pipeline, file_messages({"edit.bin": new}, generation=2, chunk_size=CHUNK)))
    poll(lambda: [r for r in transfers(worker, "valid") if r["generation"] == 2], 60, "generation 2 valid")

    def event(data: bytes, generation: int) -> FileEvent:
        return FileEvent(
            status=COMPLETED,
            source="lab",
            path="edit.bin",
            generation=generation,
            file_hash=hashlib.sha256(data).hexdigest(),
            file_size=len(data),
            chunk_count=3,
            first_chunk_at=time.time(),
            finished_at=time.time(),
        )

    [before] = transfers(worker, "valid")
    asyncio.run(produce_events(s3_pipeline, [event(old, 1), event(new, 2)]))
    poll(lambda: worker.log_tail(300).count("lab/edit.bin") > 0, 30, "the events to be seen")
    time.sleep(3)  # time for the agent to act on them, if it (wrongly) did
    assert transfers(worker, "valid") == [before]
    assert "lab/edit.bin: generation 2 supersedes 1" in worker.log_tail(300)
    assert_object(s3_client(dev_stack.s3_url), s3_pipeline["FILESTREAM_S3_BUCKET"], "edit.bin", new, generation=2)
    assert spooled_files(worker) == 0


def test_worker_killed_during_a_multipart_upload_finishes_it_after_restart(start_worker, s3_pipeline, dev_stack):
    data = os.urandom(60 * MiB)
    client = s3_client(dev_stack.s3_url)
    bucket = s3_pipeline["FILESTREAM_S3_BUCKET"]
    worker = start_worker("doomed")
    worker.wait_ready()
    asyncio.run(produce_chunks(s3_pipeline, file_messages({"big.bin": data}, chunk_size=CHUNK)))

    poll(lambda: transfers(worker, "transferring"), 60, "the transfer to start", interval=0.05)
    poll(lambda: client.list_multipart_uploads(Bucket=bucket).get("Uploads"), 30, "a multipart upload", interval=0.05)
    worker.kill()

    restarted = start_worker("doomed")
    restarted.wait_ready(timeout=120)
    record = wait_valid(restarted, {"big.bin"}, timeout=90)["big.bin"]
    # An interrupted upload resumes without using up a retry; the restarted worker's spool was
    # filled again from the chunk topic, whose offsets stayed uncommitted until S3 was done.
    assert record["retries"] == 0
    assert "resumed: the worker stopped during the upload" in restarted.log_tail(400)
    assert_object(client, bucket, "big.bin", data)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    poll(lambda: spooled_files(restarted) == 0, 30, "the spooled bytes to be released")


def test_a_bucket_deleted_after_the_start_is_created_again_when_first_needed(start_worker, s3_pipeline, dev_stack):
    s3_pipeline["FILESTREAM_S3_MAX_RETRIES"] = "1"
    worker = start_worker()
    worker.wait_ready()
    client = s3_client(dev_stack.s3_url)
    bucket = s3_pipeline["FILESTREAM_S3_BUCKET"]
    poll(lambda: bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}, 30, "the bucket made at start")
    client.delete_bucket(Bucket=bucket)
    files = {"again/a.bin": os.urandom(1000), "again/b.bin": os.urandom(6 * MiB)}
    asyncio.run(produce_chunks(s3_pipeline, file_messages(files, chunk_size=CHUNK)))

    records = wait_valid(worker, set(files))
    for name, data in files.items():
        assert records[name]["retries"] == 0
        assert_object(client, bucket, name, data)
    poll(lambda: spooled_files(worker) == 0, 30, "the spooled bytes to be released")
    assert worker.process.alive()


class OwnS3:
    """A moto server of one test's own, which it may stop and start again (the session's is shared)."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_dir = log_dir
        self.server: ManagedProcess | None = None

    def start(self) -> None:
        self.server = ManagedProcess("own-s3", moto_server_argv(self.port), log_path=self.log_dir / "own-s3.log")
        self.server.wait_for_port(HOST, self.port)

    def stop(self) -> None:
        if self.server:
            self.server.stop()


@pytest.fixture
def own_s3(tmp_path: Path):
    s3 = OwnS3(tmp_path)
    s3.start()
    yield s3
    s3.stop()


def test_s3_outage_fails_transfers_with_the_reason_and_they_recover_without_using_up_retries(
    start_worker, s3_pipeline, own_s3
):
    # Few retries: an outage that used them up would soon fail these files for good.
    s3_pipeline.update({"AWS_ENDPOINT_URL_S3": own_s3.url, "FILESTREAM_S3_MAX_RETRIES": "2"})
    bucket = s3_pipeline["FILESTREAM_S3_BUCKET"]
    worker = start_worker()
    worker.wait_ready()
    before = {"before.bin": os.urandom(1000)}
    asyncio.run(produce_chunks(s3_pipeline, file_messages(before, chunk_size=CHUNK)))
    wait_valid(worker, set(before))

    own_s3.stop()
    during = {"during/a.bin": os.urandom(CHUNK + 1), "during/b.bin": os.urandom(7 * MiB), "during/c.txt": b"c"}
    asyncio.run(produce_chunks(s3_pipeline, file_messages(during, chunk_size=CHUNK)))
    # The worker keeps consuming: the files are reassembled while S3 is away.
    wait_for_files(Path(s3_pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab", during, workers=[worker])

    def waiting():
        pending = [r for r in transfers(worker, "pending") if r["file_id"].startswith("lab/during/")]
        return pending if len(pending) == len(during) else None

    # S3 does not answer: the transfers wait, never failed, no retry used up, however long it lasts.
    poll(waiting, 60, "every transfer to wait for S3")
    time.sleep(8)
    assert [(r["state"], r["retries"]) for r in waiting()] == [("pending", 0)] * len(during)
    assert "transfers wait for it without using up their retries" in worker.log_tail(200)

    # moto keeps nothing across a restart (a real S3 comes back with its bucket): the worker makes it again.
    own_s3.start()
    records = wait_valid(worker, set(during), timeout=60)
    client = s3_client(own_s3.url)
    for name, data in during.items():
        assert records[name]["retries"] == 0
        assert_object(client, bucket, name, data)
    poll(lambda: spooled_files(worker) == 0, 30, "the spooled bytes to be released")
    assert worker.process.alive()


def test_transfers_command_writes_csv_and_counts_per_state(start_worker, s3_pipeline, tmp_path):
    files = {f"csv/{i}.bin": os.urandom(100 * i + 1) for i in range(3)}
    worker = start_worker()
    worker.wait_ready()
    asyncio.run(produce_chunks(s3_pipeline, file_messages(files, chunk_size=CHUNK)))
    wait_valid(worker, set(files))

    csv_path = tmp_path / "transfers.csv"
    result = subprocess.run(
        [FAUST, "-A", "app", "transfers", "--csv", str(csv_path), "--url", worker.url],
        env=child_env(s3_pipeline),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["file_id"] for row in rows) == sorted(f"lab/{name}" for name in files)
    for row in rows:
        data = files[row["file_id"].removeprefix("lab/")]
        assert (row["state"], row["generation"], row["size"]) == ("valid", "1", str(len(data)))
        assert row["checksum"] == crc32_base64(zlib.crc32(data))
    counts = dict(line.split() for line in result.stdout.splitlines() if line.split()[0] != "total")
    assert counts == {
        "ready": "0",
        "pending": "0",
        "transferring": "0",
        "done": "0",
        "valid": "3",
        "invalid": "0",
        "failed": "0",
    }
    assert "total  3" in result.stdout

    unreachable = subprocess.run(
        [FAUST, "-A", "app", "transfers", "--csv", str(csv_path), "--url", f"http://{HOST}:{free_port()}"],
        env=child_env(s3_pipeline),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode != 0
    assert "is a worker running there?" in unreachable.stderr
