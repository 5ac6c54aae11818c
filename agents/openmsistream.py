"""OpenMSIStream intake: chunks from an OpenMSIStream uploaders' topic, re-keyed by file, into the chunk topic.

The agent exists only when ``FILESTREAM_OPENMSISTREAM_TOPIC`` is set.

Why a hop instead of reassembling from that topic directly: OpenMSIStream producers key each
chunk differently (``{subdir}_{filename}_chunk_{i}_of_{n}``) and leave the partition to
librdkafka's default partitioner, a hash of that key, so the chunks of one file are spread
over the topic's partitions.  Reassembly keeps a file's state in tables partitioned like the
chunk topic, so every chunk of a file must reach the one worker owning that file.  This agent
sends each record on under its file identity, value unchanged, and the chunk topic's
partitioner puts the file's chunks together: the repartitioning of Faust's ``group_by``,
written out because the new key comes from decoding the value, and a value that does not
decode is dropped with its reason rather than forwarded.  The OpenMSIStream topic may have
any partition count.

Each forward waits for the broker's ack before its event is acknowledged, so a committed
offset on the OpenMSIStream topic means its record is on the chunk topic; after a crash a
record may be forwarded twice, and reassembly ignores the duplicate chunk.  Waiting one ack
at a time halved the throughput (128 MiB in 512 KiB chunks: 21 MB/s against 46 MB/s for
filestream's own records), so several actors forward side by side: Faust commits an offset
only once every record before it is acknowledged.  Their order on the chunk topic may differ
slightly from the OpenMSIStream topic's, which reassembly accepts (any chunk order; the
generation policy decides between versions of a file, not their arrival order).
"""

from __future__ import annotations

import logging
from typing import Any

from app import app, chunks_topic, settings
from models.chunk import ChunkDecodeError
from models.openmsistream import decode_openmsistream_chunk

log = logging.getLogger(__name__)

# Records in flight at once: 128 MiB in 512 KiB chunks then forwards and reassembles at 40 MB/s.
FORWARDERS = 8


async def forward_openmsistream_chunks(stream: Any) -> None:
    async for event in stream.events():
        await forward(event.key, event.value, event.message.partition)


if settings.openmsistream_topic:
    openmsistream_topic = app.topic(
        settings.openmsistream_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    app.agent(openmsistream_topic, name="openmsistream-intake", concurrency=FORWARDERS)(forward_openmsistream_chunks)


async def forward(key: bytes | None, value: bytes | None, partition: int) -> None:
    try:
        chunk = decode_openmsistream_chunk(value, settings.openmsistream_source, settings.chunk_limits)
    except ChunkDecodeError as exc:
        log.warning(
            "rejected a message on %s partition %d (key %r): %s",
            settings.openmsistream_topic,
            partition,
            key and key[:200],
            exc,
        )
        return
    await (await chunks_topic.send(key=chunk.file_id.key, value=value))
