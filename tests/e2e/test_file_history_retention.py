"""Finished files' entries past the retention go; a file in flight and a transfer with work ahead stay."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from bench.history import changelog_topic, create_changelogs
from devstack.testing import (
    as_messages,
    bootstrap_servers,
    make_chunks,
    poll,
    produce_chunks,
    view_rows,
    wait_for_files,
)
from models.identity import file_partition
from tables.assembly import AssemblyState, Status
from tables.retention import DAY
from tables.transfer_record import TransferRecord
from tables.transfer_state import State, TransferState

pytestmark = pytest.mark.e2e

RETENTION_DAYS = "0.0001"  # 8.6 s
# An expiry tick, and so a retention sweep, every 20 s; the partial file expires only after 80 s.
PARTIAL_FILE_TIMEOUT = "80"
FINISHED = 3
# Enough that a partition's sweep deletes more than agents.retention.DELETES_PER_DRAIN: it waits for the producer.
ARCHIVED = 4500


def history_entries(path: str, partitions: int, transfer_state: State) -> dict[str, tuple[bytes, bytes]]:
    """A file completed a day ago, with a transfer record a day old, as the tables store them."""
    file_id = f"lab/{path}"
    key = file_id.encode()
    partition = file_partition(key, partitions)
    a_day_ago = time.time() - DAY
    state = AssemblyState(
        generation=1,
        file_hash="0" * 64,
        file_size=10,
        chunk_count=1,
        partition=partition,
        first_chunk_at=a_day_ago,
        last_chunk_at=a_day_ago,
        status=Status.COMPLETED,
        finished_at=a_day_ago,
    )
    new = TransferState.new(file_id, generation=1, file_hash="0" * 64, size=10, max_retries=3, now=a_day_ago)
    transfer = dataclasses.replace(new, state=transfer_state)
    if transfer_state is State.FAILED:  # a retry ahead, not due for another day
        transfer = dataclasses.replace(transfer, retries=1, message="S3 said no", next_attempt_at=time.time() + DAY)
    record = TransferRecord(transfer, partition, payload_epoch=None, chunk_count=1, chunk_file_hash="0" * 64)
    return {"assemblies": (key, state.dumps()), "transfers": (key, record.dumps())}


async def write_history(env: dict[str, str], files: dict[str, State]) -> None:
    """Old files' entries straight into the tables' changelogs, before any worker restores them."""
    partitions = int(env["FILESTREAM_PARTITIONS"])
    await create_changelogs(bootstrap_servers(env), env["FILESTREAM_APP_ID"], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(env), acks="all")
    await producer.start()
    try:
        sent = []
        for path, transfer_state in files.items():
            for table, (key, value) in history_entries(path, partitions, transfer_state).items():
                topic = changelog_topic(env["FILESTREAM_APP_ID"], table)
                sent.append(await producer.send(topic, value, key=key, partition=file_partition(key, partitions)))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def test_finished_files_past_the_retention_go_and_files_with_work_ahead_stay(start_worker, pipeline):
    env = {
        **pipeline,
        "FILESTREAM_FILE_HISTORY_RETENTION": RETENTION_DAYS,
        "FILESTREAM_PARTIAL_FILE_TIMEOUT": PARTIAL_FILE_TIMEOUT,
        "FILESTREAM_STANDBY_REPLICAS": "0",
    }
    archived = {f"archived/{i}.bin": State.VALID for i in range(ARCHIVED)}
    asyncio.run(write_history(env, {**archived, "retry-ahead.bin": State.FAILED}))
    rng = random.Random(7)
    finished = {f"done/{i}.bin": rng.randbytes(300 + i) for i in range(FINISHED)}
    partial = make_chunks(rng.randbytes(300), path="partial.bin", chunk_size=100)
    worker = start_worker("worker", env)
    worker.wait_ready()
    sent = [chunk for name, data in finished.items() for chunk in make_chunks(data, path=name, chunk_size=100)]
    asyncio.run(produce_chunks(env, as_messages(sent + partial[:2])))
    wait_for_files(Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab", finished, workers=[worker])

    def remaining() -> tuple[set[str], set[str]] | None:
        files = view_rows(worker, "/filestream/files/", "files")
        transfers = view_rows(worker, "/filestream/transfers/", "transfers")
        if files is None or transfers is None:
            return None
        return {row["file"] for row in files}, {row["file_id"] for row in transfers}

    expected = ({"lab/partial.bin", "lab/retry-ahead.bin"}, {"lab/retry-ahead.bin"})
    poll(lambda: remaining() == expected, 60, "the finished files' entries to be deleted")
    summary = worker.get_json("/filestream/summary/?scope=worker")
    assert summary["files"] == {"assembling": 1, "completed": 1, "failed": 0}
    assert {state: n for state, n in summary["transfers"].items() if n} == {"failed": 1}
    digest = worker.get_json("/filestream/tables/digest/")
    assert (digest["assemblies"]["entries"], digest["transfers"]["entries"]) == (2, 1)
