"""The retention agent in-process: a tick deletes its partition's processor results older than the retention."""

from __future__ import annotations

import dataclasses
import time

from agents import retention
from processors.results import ProcessorResult, ResultStatus, result_key
from tables.processor_results import load_result, processor_results
from tables.retention import DAY
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
            await agent.put(b"", key=b"tick", partition=PARTITION)
            again = stored(new_path("again.csv"), 31)  # swept hourly: the next tick leaves it
            await agent.put(b"", key=b"tick", partition=PARTITION)
            assert load_result(again) is not None

    run(tick())
    assert load_result(old) is None
    assert load_result(recent) is not None
    assert load_result(elsewhere) is not None  # another partition's: its owner sweeps it


def test_zero_keeps_results_forever(run, new_path, monkeypatch):
    monkeypatch.setattr(retention, "settings", dataclasses.replace(retention.settings, processor_results_retention=0))
    monkeypatch.setattr(retention, "_last_swept", {})
    ancient = stored(new_path("ancient.csv"), 10_000)

    async def tick() -> None:
        async with running(retention.prune_processor_results) as agent:
            await agent.put(b"", key=b"tick", partition=PARTITION)

    run(tick())
    assert load_result(ancient) is not None
