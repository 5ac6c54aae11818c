"""Expiry of partial files that stopped receiving chunks.

Table writes must happen while an event of the right partition is being processed, so a
timer does not expire anything itself: it sends a tick to each partition this worker owns,
and the agent expires that partition's stale files (tables.assembly.expired).  The files
in flight come from the assembly table's census (tables.census), which keeps every one of
them: a tick costs the files in flight, not every file the partition ever received.
"""

from __future__ import annotations

import time
from typing import Any

from agents.reassembly import assembler, release_if_settled
from app import SWEEP_TICK, app, chunks_topic, settings, ticks_topic
from tables.assembly import expired
from tables.files import AssignmentLost, assemblies

SWEEP_INTERVAL = min(60.0, settings.partial_file_timeout / 4)


@app.timer(interval=SWEEP_INTERVAL)
async def send_expiry_ticks() -> None:
    for tp in app.assignor.assigned_actives():
        if tp.topic == chunks_topic.get_topic_name():
            await ticks_topic.send(key=SWEEP_TICK, value=b"", partition=tp.partition)


@app.agent(ticks_topic, name="expiry")
async def expire_partial_files(stream: Any) -> None:
    async for event in stream.events():
        if event.key == SWEEP_TICK:
            await expire_partition(event.message.partition, time.time())


async def expire_partition(partition: int, now: float) -> None:
    censuses = await assemblies.census.partitions([partition])
    in_flight = [key for census in censuses for key, _ in census.rows("assembling")]
    # Read again, from the assembler: the census's rows are its own, and the latest marks may not be written yet.
    states = ((key, assembler.state(key)) for key in in_flight)
    stale = [
        (key, state)
        for key, state in states
        if state is not None and expired(state, partition, now, settings.partial_file_timeout)
    ]
    for key, state in stale:
        try:
            await assembler.expire(key, state, now)
        except AssignmentLost:
            return
        release_if_settled(key, partition)
