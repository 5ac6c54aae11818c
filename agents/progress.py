"""Writing the assembly progress that is not written yet, so a file whose chunks stopped coming shows them.

The assembler writes a file's chunk marks at most once a second (tables/assembler.py); the
marks of its last chunks wait for a later chunk, which a stalled or finished upload never
sends.  A timer sends a tick to each partition that has marks waiting, and the agent writes
them while the tick, an event of that partition, is handled (a table write needs one).
"""

from __future__ import annotations

import logging
from typing import Any

from agents.reassembly import assembler
from app import PROGRESS_TICK, app, ticks_topic
from tables.assembler import PROGRESS_WRITE_INTERVAL
from tables.files import AssignmentLost

log = logging.getLogger(__name__)


@app.timer(interval=PROGRESS_WRITE_INTERVAL)
async def send_progress_ticks() -> None:
    for partition in assembler.partitions_with_unwritten_progress():
        await ticks_topic.send(key=PROGRESS_TICK, value=b"", partition=partition)


@app.agent(ticks_topic, name="progress")
async def write_unwritten_progress(stream: Any) -> None:
    async for event in stream.events():
        if event.key != PROGRESS_TICK:
            continue
        try:
            assembler.write_due_progress(event.message.partition)
        except AssignmentLost:
            log.info("partition %d was revoked before its progress was written", event.message.partition)
