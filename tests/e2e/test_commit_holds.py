"""A chunk's offset is committed only once its file is settled: the chunk topic is the spool's durable copy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devstack.stack import DevStack
from devstack.testing import as_messages, make_chunks, pipeline_env, poll, produce_chunks, wait_for_files

pytestmark = pytest.mark.e2e


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def test_an_unsettled_files_chunks_stay_uncommitted_across_a_stop(start_worker, dev_stack: DevStack, tmp_path: Path):
    env = pipeline_env(dev_stack, tmp_path, FILESTREAM_PARTITIONS="1", FILESTREAM_S3_ENABLED="false")
    worker = start_worker("worker", env)
    worker.wait_ready()
    done = {"done.bin": b"whole file"}
    partial = make_chunks(b"0123456789ab", path="partial.bin", chunk_size=4)
    # Offsets 0..2: a complete file; 3..4: two of the three chunks of another; 5..7: another complete one.
    later = {"later.bin": b"later file"}
    messages = as_messages(make_chunks(done["done.bin"], path="done.bin", chunk_size=4))
    messages += as_messages(partial[:2]) + as_messages(make_chunks(later["later.bin"], path="later.bin", chunk_size=4))
    asyncio.run(produce_chunks(env, messages))
    wait_for_files(Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab", {**done, **later}, workers=[worker])
    assert worker.stop() == 0  # a graceful stop commits what it may

    group, topic = env["FILESTREAM_APP_ID"], env["FILESTREAM_CHUNKS_TOPIC"]
    committed = asyncio.run(committed_offsets(dev_stack.bootstrap_servers, group, topic))
    assert committed == {0: 3}, "the commit must stop at the first chunk of the unsettled file"

    # A worker on an empty data dir gets the partial file's chunks again and finishes it.
    fresh = start_worker("fresh", env)
    fresh.wait_ready()
    asyncio.run(produce_chunks(env, as_messages(partial[2:])))
    wait_for_files(Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab", {"partial.bin": b"0123456789ab"}, workers=[fresh])
    poll(
        lambda: asyncio.run(committed_offsets(dev_stack.bootstrap_servers, group, topic)) == {0: len(messages) + 1},
        30,
        "every chunk committed once every file is settled",
    )
