"""Retention of processor outcomes: results older than FILESTREAM_PROCESSOR_RESULTS_RETENTION days are deleted.

A delete is a table write: it goes to the changelog partition of the event being handled,
so it must happen on the partition's owner, while an event of that partition is handled.
The expiry ticks (agents/expiry.py: one per owned partition, every minute at most) are that
event: this agent reads the same topic, and sweeps a partition when it is due
(tables.retention: at its first tick on this worker, then hourly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app import app, settings, ticks_topic
from tables.files import AssignmentLost
from tables.processor_results import delete_result, partition_results
from tables.retention import expired, sweep_due

log = logging.getLogger(__name__)

ROWS_PER_YIELD = 500  # of a sweep, between two yields to the event loop
_last_swept: dict[int, float] = {}


@app.agent(ticks_topic, name="processor-results-retention")
async def prune_processor_results(stream: Any) -> None:
    async for event in stream.events():
        partition = event.message.partition
        now = time.time()
        if sweep_due(_last_swept.get(partition), now, settings.processor_results_retention):
            _last_swept[partition] = now
            await prune_partition(partition, now)


async def prune_partition(partition: int, now: float) -> int:
    """Delete the partition's results older than the retention; how many were deleted."""
    deleted = 0
    for count, (key, result) in enumerate(partition_results(partition), 1):
        if expired(result, now, settings.processor_results_retention):
            try:
                delete_result(key)
            except AssignmentLost:
                return deleted
            deleted += 1
        if count % ROWS_PER_YIELD == 0:
            await asyncio.sleep(0)
    if deleted:
        log.info(
            "deleted %d processor results older than %g days from partition %d",
            deleted,
            settings.processor_results_retention,
            partition,
        )
    return deleted
