"""The retention agents in-process: a tick deletes its partition's processor results and file history past retention."""

from __future__ import annotations

import dataclasses
import time

import pytest

from agents import retention
from app import SWEEP_TICK
from processors.results import ProcessorResult, ResultStatus, result_key
from tables.assembly import AssemblyState, Status
from tables.census import ASSEMBLY_RULES, recount
from tables.files import assemblies, assemblies_table
from tables.processor_results import load_result, processor_results
from tables.retention import DAY
from tables.transfer_record import TransferRecord
from tables.transfer_state import State, TransferState
from tables.transfers import transfers, transfers_table
from tests.agents.in_process import running

PARTITION = 2


def stored(path: str, age_days: float, partition: int = PARTITION) -> bytes:
    key = result_key("metadata", f"lab/{path}".encode())
    result = ProcessorResult(
        processor="metadata",
        file=f"lab/{path}",
        generation=1,
        file_hash="h",
        status=ResultStatus.PROCESSED,
        reason=None,
        attempts=1,
        updated_at=time.time() - age_days * DAY,
        partition=partition,
        event={},
    )
    processor_results.data[key] = result.dumps()  # the store itself: setup needs no changelog record
    return key


def test_a_tick_deletes_the_partitions_results_older_than_the_retention(run, new_path, monkeypatch):
    monkeypatch.setattr(retention, "settings", dataclasses.replace(retention.settings, processor_results_retention=30))
    monkeypatch.setattr(retention, "_last_swept", {})
    old, recent = stored(new_path("old.csv"), 31), stored(new_path("recent.csv"), 29)
    elsewhere = stored(new_path("other.csv"), 31, partition=PARTITION + 1)

    async def tick() -> None:
        async with running(retention.prune_processor_results) as agent:
            await agent.put(b"", key=SWEEP_TICK, partition=PARTITION)
            again = stored(new_path("again.csv"), 31)  # swept hourly: the next tick leaves it
            await agent.put(b"", key=SWEEP_TICK, partition=PARTITION)
            assert load_result(again) is not None

    run(tick())
    assert load_result(old) is None
    assert load_result(recent) is not None
    assert load_result(elsewhere) is not None  # another partition's: its owner sweeps it


def stored_file(
    path: str,
    age_days: float,
    status: Status = Status.COMPLETED,
    transfer_state: State | None = State.VALID,
    partition: int = PARTITION,
) -> bytes:
    """A file's assembly state (and transfer record), last changed ``age_days`` ago, in the stores themselves."""
    key = f"lab/{path}".encode()
    at = time.time() - age_days * DAY
    state = AssemblyState(
        generation=1,
        file_hash="h",
        file_size=10,
        chunk_count=1,
        partition=partition,
        first_chunk_at=at,
        last_chunk_at=at,
        status=status,
        finished_at=None if status is Status.ASSEMBLING else at,
    )
    assemblies_table.data[key] = state.dumps()
    if transfer_state is not None:
        new = TransferState.new(f"lab/{path}", generation=1, file_hash="h", size=10, max_retries=3, now=at)
        record = TransferRecord(dataclasses.replace(new, state=transfer_state), partition, None, 1)
        transfers_table.data[key] = record.dumps()
    return key


def test_a_tick_deletes_the_partitions_finished_files_past_the_retention_and_counts_them_out(
    run, new_path, monkeypatch
):
    monkeypatch.setattr(retention, "settings", dataclasses.replace(retention.settings, file_history_retention=30))
    monkeypatch.setattr(retention, "_history_last_swept", {})
    drains = []

    async def drain() -> None:
        drains.append(len(assemblies_table.data))

    monkeypatch.setattr(retention, "DELETES_PER_DRAIN", 1)
    monkeypatch.setattr(retention, "drain_changelogs", drain)
    gone = [stored_file(new_path("valid.bin"), 31), stored_file(new_path("failed.bin"), 31, Status.FAILED, None)]
    kept = [
        stored_file(new_path("recent.bin"), 29),
        stored_file(new_path("in-flight.bin"), 31, Status.ASSEMBLING, None),
        stored_file(new_path("retry-ahead.bin"), 31, transfer_state=State.PENDING),
    ]
    elsewhere = stored_file(new_path("other.bin"), 31, partition=PARTITION + 1)
    run(assemblies.census.partitions([PARTITION]))  # counted before: the deletes must count themselves out
    builds = assemblies.census.builds

    async def tick() -> None:
        async with running(retention.prune_file_history) as agent:
            await agent.put(b"", key=SWEEP_TICK, partition=PARTITION)

    run(tick())
    assert [(assemblies.load(key), transfers.load(key)) for key in gone] == [(None, None)] * 2
    assert all(assemblies.load(key) is not None for key in [*kept, elsewhere])
    assert transfers.load(kept[2]) is not None
    assert len(drains) == 2  # one per delete here: the sweep waits for the producer between batches
    (census,) = run(assemblies.census.partitions([PARTITION]))
    assert assemblies.census.builds == builds  # not rebuilt: kept current by the deletes themselves
    assert census.counts == recount(ASSEMBLY_RULES, assemblies.partition_items(PARTITION)).counts


@pytest.mark.parametrize(
    ("setting", "last_swept", "agent_name", "store_ancient", "still_there"),
    [
        (
            "processor_results_retention",
            "_last_swept",
            "prune_processor_results",
            lambda new_path: stored(new_path("ancient.csv"), 10_000),
            lambda key: load_result(key) is not None,
        ),
        (
            "file_history_retention",
            "_history_last_swept",
            "prune_file_history",
            lambda new_path: stored_file(new_path("ancient.bin"), 10_000),
            lambda key: assemblies.load(key) is not None and transfers.load(key) is not None,
        ),
    ],
    ids=["processor results", "file history"],
)
def test_zero_keeps_forever(run, new_path, monkeypatch, setting, last_swept, agent_name, store_ancient, still_there):
    monkeypatch.setattr(retention, "settings", dataclasses.replace(retention.settings, **{setting: 0}))
    monkeypatch.setattr(retention, last_swept, {})
    ancient = store_ancient(new_path)

    async def tick() -> None:
        async with running(getattr(retention, agent_name)) as agent:
            await agent.put(b"", key=SWEEP_TICK, partition=PARTITION)

    run(tick())
    assert still_there(ancient)
