"""The campaign's hostile records are what they claim to be: small header bombs a worker must refuse."""

from __future__ import annotations

import random

import pytest

from chaos.records import CORRUPTIONS, header_bomb
from chaos.scenarios.hostile_records import BOMBS
from devstack.testing import make_chunks
from models.chunk import ChunkDecodeError, decode_chunk


@pytest.mark.parametrize(("chunk_count", "index"), BOMBS)
def test_a_header_bomb_is_small_and_refused_by_the_header_bounds(chunk_count: int, index: int) -> None:
    key, value = header_bomb("bombs", "bomb.bin", chunk_count, index, random.Random(1))
    assert key == b"bombs/bomb.bin" and len(value) < 1024
    # Every field is well typed and the hashes are sound; only the numbers cannot describe a real file.
    with pytest.raises(ChunkDecodeError, match="chunks|chunk "):
        decode_chunk(value)


def test_the_bombs_cover_each_size_the_issue_names() -> None:
    assert [count for count, _ in BOMBS] == [4 * 10**7, 10**9, 10**12, 2**32 + 2]
    assert BOMBS[-1][1] == 2**32 + 1  # past the uint32 payload key


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_broken_records_do_not_decode(kind: str) -> None:
    rng = random.Random(3)
    (chunk,) = make_chunks(b"some payload bytes", chunk_size=64)
    _, value = CORRUPTIONS[kind](chunk, rng)
    with pytest.raises(ChunkDecodeError):
        decode_chunk(value)
