"""The progress agent in-process: a progress tick writes the chunk marks the assembler held back."""

from __future__ import annotations

import time

from agents import expiry, progress, reassembly
from app import PROGRESS_TICK, SWEEP_TICK, settings
from devstack.testing import as_messages, make_chunks
from tables.assembler import PROGRESS_WRITE_INTERVAL
from tables.assembly import Status
from tables.files import assemblies
from tests.agents.fakes import Clock
from tests.agents.in_process import reassemble, running

PARTITION = 2


def received(key: bytes) -> int:
    state = assemblies.load(key)
    assert state is not None and state.status is Status.ASSEMBLING
    return state.received_count


def test_a_progress_tick_writes_the_marks_of_a_file_whose_chunks_stopped(run, new_path, monkeypatch):
    path = new_path("stalled.bin")
    key = f"lab/{path}".encode()
    clock = Clock(time.time())
    monkeypatch.setattr(reassembly.assembler, "clock", clock)
    run(reassemble(as_messages(make_chunks(b"0123456789" * 8, path=path, chunk_size=10))[:3], partition=PARTITION))
    assert received(key) == 1  # the start is written, the next two marks wait for the interval
    assert PARTITION in reassembly.assembler.partitions_with_unwritten_progress()

    async def tick(agent_function, tick_key: bytes) -> None:
        async with running(agent_function) as agent:
            await agent.put(b"", key=tick_key, partition=PARTITION)

    run(tick(progress.write_unwritten_progress, PROGRESS_TICK))
    assert received(key) == 1  # written less than the interval ago: not due yet

    clock.now += PROGRESS_WRITE_INTERVAL
    run(tick(progress.write_unwritten_progress, SWEEP_TICK))
    assert received(key) == 1  # a sweep's tick is not the progress agent's
    run(tick(progress.write_unwritten_progress, PROGRESS_TICK))
    assert received(key) == 3
    assert PARTITION not in reassembly.assembler.partitions_with_unwritten_progress()


def test_a_progress_tick_expires_nothing(run, new_path, monkeypatch):
    path = new_path("stale.bin")
    key = f"lab/{path}".encode()
    monkeypatch.setattr(reassembly.assembler, "clock", Clock(time.time() - 2 * settings.partial_file_timeout))
    run(reassemble(as_messages(make_chunks(b"0123456789", path=path))[:1], partition=PARTITION))

    async def tick() -> None:
        async with running(expiry.expire_partial_files) as agent:
            await agent.put(b"", key=PROGRESS_TICK, partition=PARTITION)

    run(tick())
    assert received(key) == 1
