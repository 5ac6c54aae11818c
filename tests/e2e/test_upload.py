"""``faust -A app upload`` as a real subprocess against a real broker; the records are read back and reassembled."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from client.registry import Registry
from devstack.processes import ManagedProcess, child_env, free_port
from devstack.stack import DevStack
from devstack.testing import pipeline_env
from devstack.worker import FAUST, PROJECT_ROOT
from models.chunk import FileChunk, decode_chunk
from models.identity import FileId
from settings import load_settings

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024
SOURCE = "e2e-host"


def upload(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FAUST, "-A", "app", "upload", "--source", SOURCE, *args],
        cwd=PROJECT_ROOT,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def _read_all(env: dict[str, str], stall_timeout: float) -> list[tuple[int, bytes, bytes]]:
    """Every record of the chunk topic as ``(partition, key, value)``, read up to the high watermarks."""
    settings = load_settings(env)
    partitions = [TopicPartition(settings.chunks_topic, p) for p in range(settings.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    await consumer.start()
    records = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        last_progress = time.monotonic()
        # ListOffsets is wrong on the dev broker; the high watermark of a fetch response is right.
        while True:
            batches = await consumer.getmany(timeout_ms=300)
            for tp, messages in batches.items():
                records += [(tp.partition, message.key, message.value) for message in messages]
                last_progress = time.monotonic()
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(consumer.highwater(tp) is not None and positions[tp] >= consumer.highwater(tp) for tp in partitions):
                return records
            if time.monotonic() - last_progress > stall_timeout:
                lagging = {tp.partition: (positions[tp], consumer.highwater(tp)) for tp in partitions}
                raise AssertionError(f"reading stalled; partition: (position, high watermark) {lagging}")
    finally:
        await consumer.stop()


def read_topic(env: dict[str, str], stall_timeout: float = 30) -> list[tuple[int, bytes, bytes]]:
    return asyncio.run(_read_all(env, stall_timeout))


def reassemble(records) -> dict[str, dict[int | None, bytes]]:
    """``path -> generation -> content``, checking keys, partitions, chunk and file hashes on the way."""
    chunks: dict[tuple[str, int | None], dict[int, FileChunk]] = defaultdict(dict)
    partition_of: dict[str, int] = {}
    for partition, key, value in records:
        record = decode_chunk(value)
        assert key == FileId(record.source, record.path).key
        assert record.source == SOURCE
        assert partition_of.setdefault(record.path, partition) == partition, f"{record.path} spread over partitions"
        assert record.payload_is_intact()
        previous = chunks[(record.path, record.generation)].setdefault(record.index, record)
        assert previous.payload == record.payload
    files: dict[str, dict[int | None, bytes]] = defaultdict(dict)
    for (path, generation), by_index in chunks.items():
        count = by_index[0].chunk_count
        assert sorted(by_index) == list(range(count)), f"{path} generation {generation}: chunks missing"
        content = b"".join(by_index[index].payload for index in range(count))
        assert len(content) == by_index[0].file_size
        assert hashlib.sha256(content).hexdigest() == by_index[0].file_hash
        files[path][generation] = content
    return dict(files)


def local_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def latest(files: dict[str, dict[int, bytes]]) -> dict[str, bytes]:
    return {path: generations[max(generations)] for path, generations in files.items()}


def sent_paths(env: dict[str, str], paths) -> set[str]:
    settings = load_settings(env)
    with Registry.in_data_dir(settings.data_dir, settings.chunks_topic) as registry:
        return {path for path in paths if registry.sent(FileId(SOURCE, path)) is not None}


def test_a_tree_is_sent_reassembles_byte_for_byte_and_is_not_sent_again(pipeline, tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    sizes = {"empty": 0, "one": 1, "sub/exact": 2 * CHUNK, "sub/deeper/big": 4 * CHUNK + 123, "skip.tmp": 10}
    for name, size in sizes.items():
        (root / name).write_bytes(os.urandom(size))
    (root / "sub" / "link").symlink_to(root / "one")
    (root / "bad\x01name").write_bytes(b"cannot travel")

    first = upload(pipeline, str(root), "--chunk-size", "64KiB", "--exclude", r"\.tmp$")

    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert "upload summary: 4 file(s) sent" in first.stdout
    assert "FAILED" in first.stdout and "bad\\x01name" in first.stdout and "control character" in first.stdout
    assert "sub/link: skipped: symlinks are never followed" in output
    expected = {name: data for name, data in local_files(root).items() if name in sizes and name != "skip.tmp"}
    records = read_topic(pipeline)
    files = reassemble(records)
    assert latest(files) == expected
    assert {len(generations) for generations in files.values()} == {1}
    assert sent_paths(pipeline, sizes) == set(expected)

    (root / "bad\x01name").unlink()
    second = upload(pipeline, str(root), "--chunk-size", "64KiB", "--exclude", r"\.tmp$")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 file(s) sent" in second.stdout and "4 unchanged" in second.stdout
    assert len(read_topic(pipeline)) == len(records)

    (root / "sub" / "exact").write_bytes(b"smaller now")
    third = upload(pipeline, str(root), "--chunk-size", "64KiB", "--exclude", r"\.tmp$")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "1 file(s) sent" in third.stdout
    after = reassemble(read_topic(pipeline))
    assert latest(after) == {**expected, "sub/exact": b"smaller now"}
    (old_generation,) = files["sub/exact"]
    assert max(after["sub/exact"]) > old_generation


def test_an_unreachable_broker_fails_naming_every_file_and_records_none(pipeline, tmp_path):
    env = {**pipeline, "FILESTREAM_BROKER": f"kafka://127.0.0.1:{free_port()}"}
    root = tmp_path / "tree"
    root.mkdir()
    for name in ("a.bin", "b.bin"):
        (root / name).write_bytes(os.urandom(1000))

    result = upload(env, str(root), "--retries", "1", "--timeout", "2", timeout=60)

    assert result.returncode == 1, result.stdout + result.stderr
    for name in ("a.bin", "b.bin"):
        assert f"FAILED {root / name}: not sent: broker 127.0.0.1:" in result.stdout
    assert "still failing after 1 retries" in result.stdout
    assert sent_paths(env, ["a.bin", "b.bin"]) == set()


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[DevStack]:
    """A broker this test may freeze without disturbing the session's shared one."""
    with DevStack(log_dir=tmp_path / "private-stack") as stack:
        yield stack


def wait_for(condition: Callable[[], bool], what: str, process: ManagedProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.alive(), f"uploader exited while waiting for {what}:\n{process.log_tail()}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}:\n{process.log_tail()}")


def test_watch_sends_settled_files_rides_out_an_outage_and_resends_changes(private_stack, tmp_path):
    env = pipeline_env(private_stack, tmp_path)
    root = tmp_path / "watched"
    root.mkdir()
    (root / "a.txt").write_bytes(b"first version of a")
    watcher = ManagedProcess(
        "uploader",
        [
            FAUST,
            "-A",
            "app",
            "upload",
            "--source",
            SOURCE,
            "--watch",
            "--settle",
            "0.5",
            "--poll",
            "0.1",
            "--retries",
            "1",
            "--timeout",
            "1",
            str(root),
        ],
        log_path=tmp_path / "uploader.log",
        env=child_env(env),
        cwd=PROJECT_ROOT,
    )
    log_text = lambda: watcher.log_path.read_text(errors="replace")  # noqa: E731
    broker = private_stack.broker_processes()[0].popen
    try:
        wait_for(lambda: "sent a.txt" in log_text(), "a.txt to be sent", watcher)

        broker.send_signal(signal.SIGSTOP)
        try:
            (root / "b.txt").write_bytes(b"written while the broker hangs")
            wait_for(lambda: f"{root / 'b.txt'}: not sent: broker" in log_text(), "b.txt to be reported", watcher)
            assert "sent b.txt" not in log_text()
            assert sent_paths(env, ["b.txt"]) == set()
        finally:
            broker.send_signal(signal.SIGCONT)
        wait_for(lambda: "sent b.txt" in log_text(), "b.txt to be sent after the outage", watcher)

        (root / "a.txt").write_bytes(b"second, longer version of a")
        wait_for(lambda: log_text().count("sent a.txt") == 2, "the changed a.txt to be sent", watcher)
    finally:
        exit_status = watcher.stop(grace=20)
    assert exit_status == 0, watcher.log_tail()

    files = reassemble(read_topic(env))
    assert latest(files) == {"a.txt": b"second, longer version of a", "b.txt": b"written while the broker hangs"}
    first, second = sorted(files["a.txt"])
    assert files["a.txt"][first] == b"first version of a" and second > first
    assert sent_paths(env, ["a.txt", "b.txt"]) == {"a.txt", "b.txt"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--include", "("], "is not a regular expression"),
        (["--chunk-size", "lots"], "expected a byte size"),
        (["--chunk-size", "64MiB"], "set FILESTREAM_CHUNK_SIZE for every process"),
        (["--source", "a/b"], "source name 'a/b' must be"),
        (["--settle", "0"], "must be a positive number"),
    ],
)
def test_bad_options_stop_with_a_usage_error_before_anything_starts(tmp_path, args, message):
    result = upload({"FILESTREAM_DATA_DIR": str(tmp_path / "data")}, *args, str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert not (tmp_path / "data").exists()
