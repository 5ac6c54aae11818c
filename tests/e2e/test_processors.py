"""Processors and reproducers through the real broker and real worker processes.

The worker loads ``tests/e2e/sample_processors.py`` (line-log, gate, row-count) next to
the built-in metadata reproducer.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from devstack.processes import child_env
from devstack.testing import file_messages, produce_chunks, wait_for_files
from devstack.worker import FAUST, PROJECT_ROOT, Worker
from models.identity import FileId

pytestmark = pytest.mark.e2e

PARTITIONS = 4
POLL_TIMEOUT = 60.0
GATED = "gated/slow.txt"
FILES = {
    GATED: b"held at the gate",
    "data/a.csv": b"x,y\n1,2\n3,4\n",
    "data/b.csv": b"x\n7\n",
    "data/poison.csv": b"p\n1\n",
    "data/empty.csv": b"",
    "data/doc.json": b'{"instrument": "xrd", "scan": 3}',
    "data/notes.txt": b"operator: ana\nsample = S-12\n\nfree text\n",
}


def partition_of(path: str) -> int:
    """The partition the test producer (aiokafka's default partitioner) sends a file's chunks to."""
    partitions = list(range(PARTITIONS))
    return DefaultPartitioner()(FileId("lab", path).key, partitions, partitions)


def name_on_partition(template: str, partition: int) -> str:
    return next(name for i in range(1000) if partition_of(name := template.format(i)) == partition)


def bootstrap(env: Mapping[str, str]) -> str:
    return env["FILESTREAM_BROKER"].removeprefix("kafka://")


async def consume(env: Mapping[str, str], topic: str, count: int, timeout: float = POLL_TIMEOUT) -> list[Any]:
    """The first ``count`` records of every partition of ``topic``, read from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(env), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        assert len(records) >= count, f"{len(records)} of {count} records on {topic} after {timeout}s"
        return records
    finally:
        await consumer.stop()


async def redeliver(env: Mapping[str, str], records: list[Any]) -> None:
    """Send records again exactly as they were: what a consumer sees when offsets were not committed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(env), acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(record.topic, record.value, key=record.key, partition=record.partition)
    finally:
        await producer.stop()


def wait_until(check: Callable[[], Any], what: str, worker: Worker, timeout: float = POLL_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"not true after {timeout}s: {what}\n{worker.log_tail(40)}")


def results(worker: Worker, processor: str) -> dict[str, dict]:
    view = worker.get_json(f"/filestream/processors/?processor={processor}&limit=1000")
    return {row["file"]: row for row in view["results"]}


def results_for(worker: Worker, processor: str, names) -> dict[str, dict] | None:
    """The records of ``names`` (relative paths of source lab), once all exist."""
    recorded = results(worker, processor)
    wanted = {f"lab/{name}" for name in names}
    return recorded if wanted <= set(recorded) else None


def test_processors_record_outcomes_survive_a_restart_and_reprocess_failures(start_worker, pipeline, tmp_path):
    line_log, poison_marker, gate_marker = tmp_path / "line-log.txt", tmp_path / "poison", tmp_path / "gate"
    poison_marker.touch()
    gate_marker.touch()
    row_count_topic = f"{pipeline['FILESTREAM_COMPLETED_TOPIC']}-row-count"
    env = {
        **pipeline,
        "FILESTREAM_PROCESSORS": "tests.e2e.sample_processors",
        "FILESTREAM_S3_ENABLED": "false",
        "PROCESSOR_TEST_LINE_LOG": str(line_log),
        "PROCESSOR_TEST_POISON": str(poison_marker),
        "PROCESSOR_TEST_GATE": str(gate_marker),
        "PROCESSOR_TEST_ROW_COUNT_TOPIC": row_count_topic,
    }
    # A file behind the gated one on its partition: the gate must hold up only its own processor.
    behind_gate = name_on_partition("data/behind-gate-{}.csv", partition_of(GATED))
    files = {**FILES, behind_gate: b"z\n9\n"}
    csv_files = [name for name in files if name.endswith(".csv")]

    worker = start_worker(env=env)
    worker.wait_ready()
    asyncio.run(produce_chunks(env, file_messages(files, chunk_size=64 * 1024)))
    wait_for_files(Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab", files, workers=[worker])

    # Everything but the gate processor finishes while the gate is closed.
    metadata = asyncio.run(consume(env, env["FILESTREAM_METADATA_TOPIC"], len(files)))
    first_run = wait_until(lambda: results_for(worker, "line-log", files), "line-log recorded every file", worker)
    wait_until(lambda: results_for(worker, "row-count", csv_files), "row-count recorded every CSV file", worker)
    assert results(worker, "gate") == {}
    gate_marker.unlink()
    wait_until(lambda: results_for(worker, "gate", [GATED]), "gate recorded its file once opened", worker)

    # Metadata: one message per file, keyed by identity, with the documented fields.
    by_path = {orjson.loads(r.value)["path"]: (r.key, orjson.loads(r.value)) for r in metadata}
    assert set(by_path) == set(files)
    for name, (key, message) in by_path.items():
        assert key == FileId("lab", name).key
        assert message["source"] == "lab" and message["generation"] == 1
        assert (message["size"], message["sha256"]) == (len(files[name]), hashlib.sha256(files[name]).hexdigest())
        assert message["first_chunk_at"] <= message["finished_at"]
        assert message["content_type"] == message["content"]["content_type"]
    assert by_path["data/a.csv"][1]["content"]["columns"] == ["x", "y"]
    assert by_path["data/a.csv"][1]["content"]["row_count"] == 2
    assert by_path["data/doc.json"][1]["content"]["keys"] == ["instrument", "scan"]
    assert by_path["data/notes.txt"][1]["content_type"] == "text/plain"

    # The raising processor failed on one file only; a reproducer's None is a failure too.
    poison = first_run["lab/data/poison.csv"]
    assert (poison["status"], poison["attempts"]) == ("failed", 1)
    assert poison["reason"] == "RuntimeError: data/poison.csv is poisoned"
    assert {row["status"] for file, row in first_run.items() if file != "lab/data/poison.csv"} == {"processed"}
    row_count = results(worker, "row-count")
    assert row_count["lab/data/empty.csv"]["reason"] == "the reproducer returned no message"
    assert {row["status"] for file, row in row_count.items() if file != "lab/data/empty.csv"} == {"processed"}
    counted = asyncio.run(consume(env, row_count_topic, len(csv_files) - 1))
    assert {r.key: orjson.loads(r.value)["lines"] for r in counted} == {
        FileId("lab", name).key: files[name].count(b"\n") for name in csv_files if files[name]
    }
    assert len(line_log.read_text().splitlines()) == len(files) - 1

    # Restart on the same data dir, and deliver every completed-file event again.
    before_restart = {name: results(worker, name) for name in ("line-log", "row-count", "metadata", "gate")}
    assert worker.stop() == 0
    worker = start_worker(env=env)
    worker.wait_ready()
    completed = asyncio.run(consume(env, env["FILESTREAM_COMPLETED_TOPIC"], len(files)))
    asyncio.run(redeliver(env, completed))
    # A new file behind the redelivered events on every partition: once it is recorded, they were handled.
    sentinels = {name_on_partition(f"sentinel/p{p}-{{}}.txt", p): b"sentinel" for p in range(PARTITIONS)}
    asyncio.run(produce_chunks(env, file_messages(sentinels, chunk_size=64 * 1024)))
    wait_until(lambda: results_for(worker, "line-log", sentinels), "line-log recorded the sentinels", worker)
    after_restart = {name: results(worker, name) for name in before_restart}
    for sentinel in sentinels:
        del after_restart["line-log"][f"lab/{sentinel}"], after_restart["metadata"][f"lab/{sentinel}"]
    assert after_restart == before_restart
    assert len(line_log.read_text().splitlines()) == len(files) - 1 + len(sentinels)
    assert worker.log_tail(400).count("line-log: skipped") >= len(files)

    # Re-run the failures of line-log only.
    poison_marker.unlink()
    command = subprocess.run(
        [FAUST, "-A", "app", "reprocess", "line-log"],
        env=child_env({**env, "FILESTREAM_DATA_DIR": str(tmp_path / "command-data")}),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode == 0, command.stdout + command.stderr
    reprocessed = wait_until(
        lambda: (row := results(worker, "line-log")["lab/data/poison.csv"])["status"] == "processed" and row,
        "line-log re-ran the poisoned file",
        worker,
    )
    assert (reprocessed["attempts"], reprocessed["reason"]) == (2, None)
    assert results(worker, "row-count")["lab/data/empty.csv"]["attempts"] == 1
    assert "lab/data/poison.csv 1" in line_log.read_text().splitlines()
    assert worker.process.alive()


def test_reprocess_names_the_registered_processors_when_given_an_unknown_one(pipeline, tmp_path):
    command = subprocess.run(
        [FAUST, "-A", "app", "reprocess", "no-such-processor"],
        env=child_env({**pipeline, "FILESTREAM_DATA_DIR": str(tmp_path / "command-data")}),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode != 0
    assert "no-such-processor" in command.stderr and "registered: metadata" in command.stderr


def test_a_worker_with_processors_refuses_to_start_without_output_files(start_worker, pipeline):
    worker = start_worker(env={**pipeline, "FILESTREAM_WRITE_OUTPUT": "false"})
    assert worker.process.popen.wait(60) != 0
    assert "FILESTREAM_WRITE_OUTPUT" in worker.log_tail()


def test_the_examples_run_as_the_readme_says(start_worker, pipeline):
    examples = "examples.checksum_report,examples.csv_stats"
    env = {**pipeline, "FILESTREAM_PROCESSORS": examples, "FILESTREAM_S3_ENABLED": "false"}
    files = {"run/temps.csv": b"t,temp\n0,20.5\n1,21.5\n", "run/notes.txt": b"not a table"}
    worker = start_worker(env=env)
    worker.wait_ready()
    asyncio.run(produce_chunks(env, file_messages(files, chunk_size=64 * 1024)))
    output = Path(env["FILESTREAM_OUTPUT_DIR"])
    wait_for_files(output / "lab", files, workers=[worker])
    stats = orjson.loads(asyncio.run(consume(env, "csv-stats", 1))[0].value)
    assert (stats["path"], stats["rows"]) == ("run/temps.csv", 2)
    assert stats["columns"][1] == {"name": "temp", "count": 2, "min": 20.5, "max": 21.5, "mean": 21.0}
    report = wait_until(lambda: results_for(worker, "checksum-report", files), "checksum-report recorded both", worker)
    assert {row["status"] for row in report.values()} == {"processed"}
    lines = (output / "checksum-report.csv").read_text().splitlines()
    assert lines[0] == "file,generation,size,sha256" and len(lines) == 1 + len(files)
