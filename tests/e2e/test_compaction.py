"""Changelogs are compacted on Kafka: a long history through one partition restores from about one record per key.

A file's assembly state is written when it starts and again when it completes (its chunks in
between at most once a second), so the assembly changelog receives at least two records per
file; Kafka's log cleaner keeps the newest of each key.  A fresh worker restores
from what is left.  (The development broker never compacts: its changelogs only grow.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from devstack.stack import DevStack
from devstack.testing import file_messages, pipeline_env, poll, produce_chunks, wait_for_files

pytestmark = pytest.mark.e2e
log = logging.getLogger("tests")

FILES = 1500
CHUNKS_PER_FILE = 4
# The stack's broker rolls a changelog segment 10 s after its first record (log.roll.ms); only
# rolled segments are cleaned.
SEGMENT_ROLL = 10.0
# Records a compacted changelog may hold beyond one per key: the active segment's, of the last file.
KEPT_UNCLEANED = 10


async def records_in(bootstrap: str, topic: str) -> tuple[int, int, int]:
    """(records ever written, records left, distinct keys) in partition 0 of ``topic``; a restore reads those left."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records, keys = 0, set[bytes]()
        while await consumer.position(partition) < end:
            for batch in (await consumer.getmany(partition, timeout_ms=1000)).values():
                records += len(batch)
                keys.update(record.key for record in batch)
        return end, records, len(keys)
    finally:
        await consumer.stop()


def test_a_fresh_worker_restores_a_compacted_changelog(start_worker, dev_stack: DevStack, tmp_path: Path) -> None:
    env = pipeline_env(
        dev_stack,
        tmp_path,
        FILESTREAM_PARTITIONS="1",
        FILESTREAM_S3_ENABLED="false",
        FILESTREAM_METADATA_ENABLED="false",
    )
    files = {f"history/{i:05d}.bin": i.to_bytes(4, "big") * CHUNKS_PER_FILE for i in range(FILES)}
    first = start_worker("first", env)
    first.wait_ready()
    asyncio.run(produce_chunks(env, file_messages(files, chunk_size=4)))
    output = Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab"
    wait_for_files(output, files, stall_timeout=120, workers=[first])

    changelog = f"{env['FILESTREAM_APP_ID']}-assemblies-changelog"
    written, _, live = asyncio.run(records_in(dev_stack.bootstrap_servers, changelog))
    assert live == FILES and written >= 2 * FILES
    # A later file rolls the segment that holds the history, which the cleaner may then compact.
    time.sleep(SEGMENT_ROLL + 1)
    asyncio.run(produce_chunks(env, file_messages({"history/last.bin": b"last"}, chunk_size=4)))
    wait_for_files(output, {"history/last.bin": b"last"}, workers=[first])
    # The cleaner works a segment at a time: wait until what is left is about one record per key
    # (the active segment, which holds the last file's, is never cleaned).
    compacted = poll(
        lambda: (
            (n := asyncio.run(records_in(dev_stack.bootstrap_servers, changelog)))[1] <= n[2] + KEPT_UNCLEANED and n
        ),
        90,
        "the log cleaner to compact the assembly changelog",
        interval=2,
    )
    digest = first.get_json("/filestream/tables/digest/")["assemblies"]
    assert first.stop() == 0

    started = time.monotonic()
    fresh = start_worker("fresh", env)
    fresh.wait_ready(timeout=120)
    restored_in = time.monotonic() - started
    assert fresh.get_json("/filestream/tables/digest/")["assemblies"] == digest
    written, records, keys = compacted
    log.info(
        "assembly changelog: %d records written for %d files; %d left after compaction for %d live keys; "
        "a fresh worker restored it and was ready in %.1f s",
        written,
        FILES,
        records,
        keys,
        restored_in,
    )
    assert keys == FILES + 1
    assert records <= keys + KEPT_UNCLEANED, f"{records} records left for {keys} keys"
