"""Chunk records as a broken or hostile sender could send them (good ones: :mod:`devstack.testing`)."""

from __future__ import annotations

import random

from devstack.testing import Message, as_message, make_chunks
from models.chunk import FileChunk


def with_bad_payload(chunk: FileChunk, rng: random.Random) -> Message:
    """One byte of the payload flipped, the header unchanged: the chunk hash no longer matches."""
    payload = bytearray(chunk.payload or b"\0")
    position = rng.randrange(len(payload))
    payload[position] ^= 0xFF
    return as_message(chunk.derive(payload=bytes(payload)))


def truncated(chunk: FileChunk, rng: random.Random) -> Message:
    """The record cut short, as a broken producer or a torn write would leave it."""
    key, value = as_message(chunk)
    return key, value[: rng.randrange(1, len(value))]


def garbage(chunk: FileChunk, rng: random.Random) -> Message:
    """Random bytes under the file's key."""
    key, value = as_message(chunk)
    return key, rng.randbytes(rng.randint(1, 2048))


def under_wrong_key(chunk: FileChunk, rng: random.Random) -> Message:
    """A valid record under another file's key: it would land on the wrong partition's state."""
    _, value = as_message(chunk)
    return f"{chunk.source}/elsewhere-{rng.randrange(10**6)}.bin".encode(), value


def contradicting(chunk: FileChunk, rng: random.Random) -> Message:
    """Same generation, its own payload and chunk hash intact, but a different file size and hash."""
    return as_message(chunk.derive(file_size=(chunk.file_size or 0) + rng.randint(1, 999), file_hash="0" * 64))


CORRUPTIONS = {
    "bad payload": with_bad_payload,
    "truncated": truncated,
    "garbage": garbage,
    "wrong key": under_wrong_key,
    "contradicting header": contradicting,
}


def header_bomb(source: str, path: str, chunk_count: int, index: int, rng: random.Random) -> Message:
    """A small, well-formed record that claims far more than it carries.

    The only chunk of a 256-byte file, its fields well typed and its hashes sound, claiming the
    file has ``chunk_count`` chunks of which this is number ``index``: state sized by the claim (a
    bitmap of ``chunk_count`` bits) would be huge.  The header bounds (models/bounds.py) refuse it.
    """
    data = rng.randbytes(256)
    (chunk,) = make_chunks(data, source=source, path=path, chunk_size=len(data), generation=1)
    return as_message(chunk.derive(chunk_count=chunk_count, index=index))
