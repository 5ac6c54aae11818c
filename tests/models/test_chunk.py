"""The chunk record codec: round trip, wire overhead, and rejection of damaged messages."""

import hashlib
import os
from typing import Any

import orjson
import pytest

from models.chunk import MAGIC, ChunkDecodeError, FileChunk, decode_chunk, digest, encode_chunk

MiB = 1024**2


def make_chunk(payload: bytes = b"hello", **overrides: Any) -> FileChunk:
    fields: dict[str, Any] = dict(
        source="host-1",
        path="dir/file.bin",
        generation=1_700_000_000_000_000,
        file_hash=digest(payload),
        file_size=len(payload),
        chunk_count=1,
        index=0,
        offset=0,
        chunk_hash=digest(payload),
        payload=payload,
        mtime=1_700_000_000.25,
    )
    fields.update(overrides)
    return FileChunk(**fields)


def test_digest_is_sha256_hex():
    assert digest(b"abc") == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("payload", [b"", b"\x00", bytes(range(256)) * 17, os.urandom(MiB)])
def test_round_trip_keeps_every_field(payload):
    chunk = make_chunk(payload)
    decoded = decode_chunk(encode_chunk(chunk))
    assert decoded.header() == chunk.header()
    assert decoded.payload == payload
    assert decoded.payload_is_intact()


def test_round_trip_of_a_record_without_generation_or_mtime():
    chunk = make_chunk(generation=None, mtime=None)
    decoded = decode_chunk(encode_chunk(chunk))
    assert decoded.generation is None and decoded.mtime is None


def test_payload_travels_raw_and_costs_at_most_one_percent_at_1_MiB():
    payload = os.urandom(MiB)
    message = encode_chunk(make_chunk(payload, path="a/" + "deep/" * 40 + "file.bin"))
    assert message.endswith(payload)
    assert len(message) - len(payload) <= 0.01 * len(payload)


def test_damaged_payload_is_detected_by_the_chunk_hash():
    message = bytearray(encode_chunk(make_chunk(b"payload bytes")))
    message[-1] ^= 0xFF
    assert not decode_chunk(bytes(message)).payload_is_intact()


def _message_with_header(header: dict, payload: bytes = b"hello") -> bytes:
    encoded = orjson.dumps(header)
    return MAGIC + len(encoded).to_bytes(4, "big") + encoded + payload


@pytest.mark.parametrize(
    "cut, error",
    [
        (3, "not a filestream chunk record"),
        (8, "truncated record"),
        (20, "truncated record"),
        (-1, "truncated payload"),
    ],
)
def test_truncated_messages_are_rejected_saying_so(cut, error):
    message = encode_chunk(make_chunk(b"hello"))
    with pytest.raises(ChunkDecodeError, match=error):
        decode_chunk(message[:cut])


@pytest.mark.parametrize(
    "message, error",
    [
        (b"", "not a filestream chunk record"),
        (b"XXXX\x00\x00\x00\x02{}", "not a filestream chunk record"),
        (MAGIC + (10**9).to_bytes(4, "big") + b"{}", "truncated record"),
        (MAGIC + (5).to_bytes(4, "big") + b"{nope", "garbled header"),
        (MAGIC + (2).to_bytes(4, "big") + b"[]", "not a JSON object"),
    ],
)
def test_garbled_messages_are_rejected_saying_so(message, error):
    with pytest.raises(ChunkDecodeError, match=error):
        decode_chunk(message)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"index": "0"}, "'index' missing or not an integer"),
        ({"chunk_hash": None}, "'chunk_hash' missing or not a string"),
        ({"generation": 1.5}, "'generation' is not an integer"),
        ({"generation": -1}, "negative generation"),
        ({"index": 1}, "chunk index 1 outside 0..0"),
        ({"chunk_count": 0}, "chunk_count 0 < 1"),
        ({"offset": 3}, "extends past the end"),
        ({"length": 4}, "truncated payload"),
        ({"path": "../escape"}, "bad file identity"),
        ({"source": "a/b"}, "bad file identity"),
    ],
)
def test_headers_with_wrong_fields_are_rejected_naming_the_field(change, error):
    header = {**make_chunk(b"hello").header(), **change}
    with pytest.raises(ChunkDecodeError, match=error):
        decode_chunk(_message_with_header(header))
