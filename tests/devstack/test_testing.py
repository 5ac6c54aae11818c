"""The shared helpers build records exactly as the uploader would."""

from __future__ import annotations

import hashlib

from devstack.testing import as_message, bootstrap_servers, file_messages, make_chunks
from models.chunk import decode_chunk


def test_chunks_cover_the_file_in_order_with_sound_hashes() -> None:
    data = bytes(range(256)) * 3 + b"tail"
    chunks = make_chunks(data, source="lab", path="run/a.bin", chunk_size=100, generation=7)
    assert b"".join(chunk.payload for chunk in chunks) == data
    assert [chunk.index for chunk in chunks] == list(range(len(chunks))) and len(chunks) == 8
    assert [chunk.offset for chunk in chunks] == [100 * index for index in range(8)]
    assert all(chunk.payload_is_intact() and chunk.chunk_count == 8 for chunk in chunks)
    assert {chunk.file_hash for chunk in chunks} == {hashlib.sha256(data).hexdigest()}


def test_an_empty_file_is_one_empty_chunk() -> None:
    (chunk,) = make_chunks(b"")
    assert (chunk.chunk_count, chunk.file_size, chunk.payload) == (1, 0, b"")


def test_a_message_is_keyed_by_the_file_identity_and_decodes() -> None:
    (chunk,) = make_chunks(b"abc", source="lab", path="x/y.txt", chunk_size=8)
    key, value = as_message(chunk)
    assert key == b"lab/x/y.txt"
    assert decode_chunk(value).payload == b"abc"


def test_a_hostile_name_still_travels() -> None:
    (chunk,) = make_chunks(b"abc", source="lab", path="../up.txt", chunk_size=8)
    assert as_message(chunk)[0] == b"lab/../up.txt"


def test_file_messages_send_file_after_file() -> None:
    records = file_messages({"a": b"12345", "b": b"678"}, source="s", chunk_size=2)
    assert [key for key, _ in records] == [b"s/a"] * 3 + [b"s/b"] * 2


def test_bootstrap_servers_of_a_cluster() -> None:
    env = {"FILESTREAM_BROKER": "kafka://127.0.0.1:1,kafka://127.0.0.1:2"}
    assert bootstrap_servers(env) == "127.0.0.1:1,127.0.0.1:2"
