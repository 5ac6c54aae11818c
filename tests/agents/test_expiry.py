"""The expiry agent in-process: a tick on a partition fails its partial files that stopped receiving chunks."""

from __future__ import annotations

import time

from agents import expiry, reassembly
from app import SWEEP_TICK, settings
from devstack.testing import as_messages, make_chunks
from models.events import FAILED
from tables.assembly import Status
from tables.files import assemblies
from tests.agents.fakes import Clock
from tests.agents.in_process import reassemble, running

PARTITION = 1


def test_a_tick_expires_a_stale_partial_file_and_releases_its_hold(run, outside, new_path, monkeypatch):
    stale, fresh = new_path("stale.bin"), new_path("fresh.bin")
    stale_key, fresh_key = f"lab/{stale}".encode(), f"lab/{fresh}".encode()
    tp = reassembly.chunk_partition(PARTITION)
    # The reassembly's clock (its ``clock=``) puts the stale file's last chunk two timeouts back.
    assembler_clock = Clock(time.time() - 2 * settings.partial_file_timeout)
    monkeypatch.setattr(reassembly.assembler, "clock", assembler_clock)
    [stale_first] = run(reassemble(as_messages(make_chunks(b"0123456789", path=stale))[:1], partition=PARTITION))
    assembler_clock.now = time.time()
    [fresh_first] = run(reassemble(as_messages(make_chunks(b"0123456789", path=fresh))[:1], partition=PARTITION))
    assert not stale_first.message.acked and not fresh_first.message.acked

    async def tick() -> None:
        async with running(expiry.expire_partial_files) as agent:
            await agent.put(b"", key=SWEEP_TICK, partition=PARTITION)

    run(tick())

    [failed] = outside.completed.events()
    assert (failed.path, failed.status) == (stale, FAILED)
    assert failed.reason is not None and failed.reason.startswith("expired: 1 of 3 chunks after ")
    state = assemblies.load(stale_key)
    assert state is not None and state.status is Status.FAILED
    assert stale_first.message.acked
    assert stale_key not in reassembly.holds.held(tp)
    # A partial file that received a chunk within the timeout goes on waiting for the others.
    fresh_state = assemblies.load(fresh_key)
    assert fresh_state is not None and fresh_state.status is Status.ASSEMBLING
    assert not fresh_first.message.acked
