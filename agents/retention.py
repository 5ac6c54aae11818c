"""Retention: processor outcomes and finished files' history older than their retention are deleted.

Processor results older than FILESTREAM_PROCESSOR_RESULTS_RETENTION days go, and so do the
assembly state and transfer record of a finished file whose transfer settled for good, both
more than FILESTREAM_FILE_HISTORY_RETENTION days ago (tables.retention).

A delete is a table write: it goes to the changelog partition of the event being handled,
so it must happen on the partition's owner, while an event of that partition is handled.
The expiry ticks (agents/expiry.py: one per owned partition, every minute at most) are that
event: these agents read the same topic, and sweep a partition when it is due
(tables.retention: at its first tick on this worker, then hourly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from app import SWEEP_TICK, app, settings, ticks_topic
from processors.results import ProcessorResult
from tables.assembly import AssemblyState
from tables.files import AssignmentLost, assemblies
from tables.processor_results import delete_result, partition_results
from tables.retention import expired, file_history_expired, sweep_due
from tables.transfers import transfers

log = logging.getLogger(__name__)

V = TypeVar("V")

ROWS_PER_YIELD = 500  # of a sweep, between two yields to the event loop
# Every delete queues a changelog tombstone in the producer; a sweep of a long history would
# otherwise queue them all at once (270 000 of them filled the worker's memory).
DELETES_PER_DRAIN = 1000
_last_swept: dict[int, float] = {}  # of the processor results, per partition
_history_last_swept: dict[int, float] = {}  # of the assembly and transfer tables, per partition


@app.agent(ticks_topic, name="processor-results-retention")
async def prune_processor_results(stream: Any) -> None:
    await sweep_partitions_when_due(stream, _last_swept, lambda: settings.processor_results_retention, prune_partition)


async def prune_partition(partition: int, now: float) -> int:
    """Delete the partition's results older than the retention; how many were deleted."""
    days = settings.processor_results_retention

    def delete_if_expired(key: bytes, result: ProcessorResult) -> bool:
        if not expired(result, now, days):
            return False
        delete_result(key)
        return True

    return await sweep(partition_results(partition), delete_if_expired, "processor results", partition, days)


@app.agent(ticks_topic, name="file-history-retention")
async def prune_file_history(stream: Any) -> None:
    await sweep_partitions_when_due(
        stream, _history_last_swept, lambda: settings.file_history_retention, prune_file_history_partition
    )


async def prune_file_history_partition(partition: int, now: float) -> int:
    """Delete the assembly state and transfer record of the partition's files past the retention; how many files."""
    days = settings.file_history_retention

    def delete_if_expired(key: bytes, listed: AssemblyState) -> bool:
        if not file_history_expired(listed, None, now, days):  # the assembly alone is too recent, or in flight
            return False
        # Read again: the scan's state is a snapshot, and a new generation may have begun since.
        state, record = assemblies.load(key), transfers.load(key)
        if state is None or not file_history_expired(state, record, now, days):
            return False
        if record is not None:
            transfers.delete(key)  # first: a sweep finds a file by its assembly state, so that one goes last
        assemblies.delete(key)
        return True

    return await sweep(assemblies.partition_items(partition), delete_if_expired, "finished files", partition, days)


async def sweep_partitions_when_due(
    stream: Any,
    last_swept: dict[int, float],
    retention_days: Callable[[], float],
    prune: Callable[[int, float], Awaitable[int]],
) -> None:
    """On each tick, ``prune`` its partition if a sweep is due (tables.retention.sweep_due)."""
    async for event in stream.events():
        if event.key != SWEEP_TICK:
            continue
        partition = event.message.partition
        now = time.time()
        if sweep_due(last_swept.get(partition), now, retention_days()):
            last_swept[partition] = now
            await prune(partition, now)


async def sweep(
    rows: Iterable[tuple[bytes, V]],
    delete_if_expired: Callable[[bytes, V], bool],
    what: str,
    partition: int,
    retention_days: float,
) -> int:
    """Offer every row of one partition to ``delete_if_expired``; how many it deleted.

    Stops when the partition is revoked (its next owner sweeps it), yields to the event loop
    every :data:`ROWS_PER_YIELD` rows, and waits for the producer to send the changelog
    tombstones every :data:`DELETES_PER_DRAIN` deletes.
    """
    deleted = 0
    try:
        for count, (key, row) in enumerate(rows, 1):
            if delete_if_expired(key, row):
                deleted += 1
                if deleted % DELETES_PER_DRAIN == 0:
                    await drain_changelogs()
            if count % ROWS_PER_YIELD == 0:
                await asyncio.sleep(0)
    except AssignmentLost:
        log.info("partition %d was revoked during its sweep of %s", partition, what)
    if deleted:
        log.info("deleted %d %s older than %g days from partition %d", deleted, what, retention_days, partition)
    return deleted


async def drain_changelogs() -> None:
    """Wait until the producer has sent every record queued so far (the table writes' changelog records among them).

    Faust's flush gives up on its queue when nothing was sent for 0.1 s (a slow broker), so
    it is asked again until the queue is empty.
    """
    while True:
        await app.producer.flush()
        if not app.producer.buffer.size:
            return
