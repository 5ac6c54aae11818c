"""Expiry of partial files that stopped receiving chunks.

Table writes must happen while an event of the right partition is being
processed, so a timer does not expire anything itself: it sends a tick to each
partition this worker owns, and the agent expires that partition's stale files.
"""

from __future__ import annotations

import logging
import time

from agents.reassembly import publish_failure
from app import app, chunks_topic, settings, ticks_topic
from models.identity import FileId
from tables.assembly import AssemblyState, Status
from tables.files import assemblies

log = logging.getLogger(__name__)

SWEEP_INTERVAL = min(60.0, settings.partial_file_timeout / 4)


@app.timer(interval=SWEEP_INTERVAL)
async def send_expiry_ticks() -> None:
    for tp in app.assignor.assigned_actives():
        if tp.topic == chunks_topic.get_topic_name():
            await ticks_topic.send(key=b"tick", value=b"", partition=tp.partition)


@app.agent(ticks_topic, name="expiry")
async def expire_partial_files(stream):
    async for event in stream.events():
        await expire_partition(event.message.partition, time.time())


def stale_assemblies(partition: int, now: float) -> list[tuple[bytes, AssemblyState]]:
    cutoff = now - settings.partial_file_timeout
    stale = []
    for key, raw in assemblies.items():
        state = AssemblyState.loads(raw)
        if state.partition == partition and state.status is Status.ASSEMBLING and state.last_chunk_at < cutoff:
            stale.append((key, state))
    return stale


async def expire_partition(partition: int, now: float) -> None:
    for key, state in stale_assemblies(partition, now):
        reason = (
            f"expired: {state.received_count} of {state.chunk_count} chunks after "
            f"{now - state.last_chunk_at:.0f}s without a chunk"
        )
        await publish_failure(FileId.from_key(key), state, reason)
