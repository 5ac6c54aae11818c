"""A worker's counts survive a restore on an empty data dir, and processor results past the retention go."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from bench.history import changelog_topic
from devstack.testing import as_messages, bootstrap_servers, make_chunks, poll, produce_chunks, wait_for_files
from models.identity import file_partition
from processors.results import ProcessorResult, ResultStatus, result_key
from tables.retention import DAY

pytestmark = pytest.mark.e2e

FINISHED, PARTIAL = 12, 3


def worker_summary(worker) -> dict:
    return worker.get_json("/filestream/summary/?scope=worker")


def counts(worker) -> tuple[dict, dict]:
    summary = worker_summary(worker)
    return summary["files"], {state: n for state, n in summary["transfers"].items() if n}


async def write_results(env: dict[str, str], ages_days: dict[str, float]) -> None:
    """Processor results of files never received, recorded ``age`` days ago, straight into the changelog."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(env), acks="all")
    await producer.start()
    try:
        for path, age in ages_days.items():
            file_key = f"lab/{path}".encode()
            partition = file_partition(file_key, int(env["FILESTREAM_PARTITIONS"]))
            result = ProcessorResult(
                processor="archived",
                file=f"lab/{path}",
                generation=1,
                file_hash="0" * 64,
                status=ResultStatus.PROCESSED,
                reason=None,
                attempts=1,
                updated_at=time.time() - age * DAY,
                partition=partition,
                event={},
            )
            topic = changelog_topic(env["FILESTREAM_APP_ID"], "processor-results")
            await producer.send_and_wait(
                topic, result.dumps(), key=result_key("archived", file_key), partition=partition
            )
    finally:
        await producer.stop()


def wait_for_counts(worker, expected: tuple[dict, dict], what: str) -> None:
    last: list[tuple[dict, dict]] = []

    def reached() -> bool:
        last[:] = [counts(worker)]
        return last[0] == expected

    try:
        poll(reached, 30, what)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}: counts {last}, expected {expected}") from None


def archived(worker) -> set[str] | None:
    page = worker.get_json("/filestream/processors/?processor=archived")
    return {row["file"] for row in page["results"]}


def test_counts_survive_a_restore_and_old_processor_results_are_deleted(start_worker, pipeline):
    env = {
        **pipeline,
        "FILESTREAM_PROCESSOR_RESULTS_RETENTION": "1",
        "FILESTREAM_PARTIAL_FILE_TIMEOUT": "40",  # an expiry tick (and a retention sweep) every 10 s
        "FILESTREAM_STANDBY_REPLICAS": "0",
    }
    rng = random.Random(5)
    finished = {f"done/{i}.bin": rng.randbytes(300 + i) for i in range(FINISHED)}
    partial = {f"partial/{i}.bin": rng.randbytes(300) for i in range(PARTIAL)}
    partial_chunks = {name: make_chunks(data, path=name, chunk_size=100) for name, data in partial.items()}
    bad = [dataclasses.replace(c, file_hash="f" * 64) for c in make_chunks(b"x" * 250, path="bad.bin", chunk_size=100)]
    first = start_worker("first", env)
    first.wait_ready()
    sent = [c for name, data in finished.items() for c in make_chunks(data, path=name, chunk_size=100)]
    sent += [c for chunks in partial_chunks.values() for c in chunks[:2]] + bad
    asyncio.run(produce_chunks(env, as_messages(sent)))
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab"
    wait_for_files(output, finished, workers=[first])
    expected_files = {"assembling": PARTIAL, "completed": FINISHED, "failed": 1}
    wait_for_counts(first, (expected_files, {"valid": FINISHED}), "every transfer valid")
    assert first.stop() == 0

    asyncio.run(write_results(env, {"old.csv": 1.5, "recent.csv": 0.5}))
    fresh = start_worker("fresh", env)
    fresh.wait_ready(timeout=60)
    assert counts(fresh) == (expected_files, {"valid": FINISHED})
    summary = worker_summary(fresh)
    assert sorted(row["file"] for row in summary["in_flight"]) == sorted(f"lab/{name}" for name in partial)
    assert {row["file"] for row in summary["recent_completed"]} == {f"lab/{name}" for name in finished}
    assert [row["file"] for row in summary["recent_failures"]] == ["lab/bad.bin"]
    # The retention sweep runs at the first tick of each partition: the result 1.5 days old goes.
    poll(lambda: archived(fresh) == {"lab/recent.csv"}, 30, "the result past the retention to be deleted")

    # The counts go on from the restored ones as the partial files complete.
    asyncio.run(produce_chunks(env, as_messages([chunks[2] for chunks in partial_chunks.values()])))
    wait_for_files(output, partial, workers=[fresh])
    done = {"assembling": 0, "completed": FINISHED + PARTIAL, "failed": 1}
    wait_for_counts(fresh, (done, {"valid": FINISHED + PARTIAL}), "the partial files' transfers")
    page = fresh.get_json("/filestream/files/?status=completed&limit=5&offset=10")
    assert (page["total"], len(page["files"]), page["next_offset"]) == (FINISHED + PARTIAL, 5, None)
    assert worker_summary(fresh)["in_flight"] == []
    transfers = fresh.get_json("/filestream/transfers/?state=valid&limit=1")
    assert (transfers["total"], transfers["states"]["valid"], transfers["next_offset"]) == (15, 15, 1)
