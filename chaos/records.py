"""Chunk records as the uploader sends them, and as a broken or hostile sender could."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from models.chunk import FileChunk, digest, encode_chunk

Message = tuple[bytes, bytes]  # (key, value) on the chunk topic


def file_chunks(data: bytes, *, source: str, path: str, chunk_size: int, generation: int | None) -> list[FileChunk]:
    """Every chunk of one generation of a file, in order."""
    file_hash = hashlib.sha256(data).hexdigest()
    count = max(1, -(-len(data) // chunk_size))
    return [
        FileChunk(
            source=source,
            path=path,
            generation=generation,
            file_hash=file_hash,
            file_size=len(data),
            chunk_count=count,
            index=index,
            offset=index * chunk_size,
            chunk_hash=digest(data[index * chunk_size : (index + 1) * chunk_size]),
            payload=data[index * chunk_size : (index + 1) * chunk_size],
        )
        for index in range(count)
    ]


def message(chunk: FileChunk) -> Message:
    """The record as an uploader keys it.  The key is built from the text, unchecked, so hostile names travel too."""
    return f"{chunk.source}/{chunk.path}".encode("utf-8", "surrogatepass"), encode_chunk(chunk)


def messages(chunks: Iterable[FileChunk]) -> list[Message]:
    return [message(chunk) for chunk in chunks]


def with_bad_payload(chunk: FileChunk, rng: random.Random) -> Message:
    """One byte of the payload flipped, the header unchanged: the chunk hash no longer matches."""
    payload = bytearray(chunk.payload or b"\0")
    position = rng.randrange(len(payload))
    payload[position] ^= 0xFF
    return message(chunk.derive(payload=bytes(payload)))


def truncated(chunk: FileChunk, rng: random.Random) -> Message:
    """The record cut short, as a broken producer or a torn write would leave it."""
    key, value = message(chunk)
    return key, value[: rng.randrange(1, len(value))]


def garbage(chunk: FileChunk, rng: random.Random) -> Message:
    """Random bytes under the file's key."""
    key, value = message(chunk)
    return key, rng.randbytes(rng.randint(1, 2048))


def under_wrong_key(chunk: FileChunk, rng: random.Random) -> Message:
    """A valid record under another file's key: it would land on the wrong partition's state."""
    _, value = message(chunk)
    return f"{chunk.source}/elsewhere-{rng.randrange(10**6)}.bin".encode(), value


def contradicting(chunk: FileChunk, rng: random.Random) -> Message:
    """Same generation, its own payload and chunk hash intact, but a different file size and hash."""
    return message(chunk.derive(file_size=(chunk.file_size or 0) + rng.randint(1, 999), file_hash="0" * 64))


CORRUPTIONS = {
    "bad payload": with_bad_payload,
    "truncated": truncated,
    "garbage": garbage,
    "wrong key": under_wrong_key,
    "contradicting header": contradicting,
}


async def produce(bootstrap: str, topic: str, records: list[Message]) -> None:
    """Send in order, each acknowledged by the broker (acks=all), as the uploader does."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, max_request_size=16 * 1024**2
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        for future in futures:
            await future
    finally:
        await producer.stop()
