"""Header bounds: every chunk a real uploader cuts passes; a header that cannot describe a real file is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.bounds import ChunkBoundsError, ChunkLimits, check_layout, chunk_length_of
from models.chunk import MAGIC, ChunkDecodeError, decode_chunk

LIMITS = ChunkLimits(max_payload_bytes=4 * 1024**2, max_file_size=1024**4)
HUGE = st.integers(min_value=-(2**70), max_value=2**70)


class Layout(TypedDict):
    """What a header claims about its chunk's place in its file: check_layout's arguments but the limits."""

    chunk_count: int
    file_size: int | None
    index: int
    offset: int
    length: int


def cut(file_size: int, chunk_length: int) -> list[dict[str, int]]:
    """The first and last three headers an uploader sends for a file of ``file_size`` bytes in chunks of ``chunk_length``."""  # noqa: E501
    count = max(1, -(-file_size // chunk_length))
    indexes = sorted({*range(min(3, count)), *range(max(0, count - 3), count)})
    return [
        {
            "index": index,
            "offset": index * chunk_length,
            "length": min(chunk_length, file_size - index * chunk_length),
            "chunk_count": count,
        }
        for index in indexes
    ]


@given(file_size=st.integers(0, 10**7), chunk_length=st.integers(1, 4 * 1024**2))
def test_every_chunk_of_a_real_file_passes(file_size: int, chunk_length: int) -> None:
    for header in cut(file_size, chunk_length):
        check_layout(file_size=file_size, limits=LIMITS, **header)
        check_layout(file_size=None, limits=LIMITS, **header)  # OpenMSIStream's records: no size


@given(file_size=st.integers(1, 10**9), chunk_length=st.integers(1, 4 * 1024**2))
def test_the_common_length_is_the_same_from_every_chunk(file_size: int, chunk_length: int) -> None:
    headers = cut(file_size, chunk_length)
    lengths = {chunk_length_of(**header) for header in (headers[0], headers[-1])}
    assert lengths == ({None} if len(headers) == 1 else {chunk_length})


@settings(max_examples=500)
@given(file_size=st.one_of(st.none(), HUGE), chunk_count=HUGE, index=HUGE, offset=HUGE, length=HUGE)
def test_any_accepted_header_describes_a_file_within_the_limits(
    file_size: int | None, chunk_count: int, index: int, offset: int, length: int
) -> None:
    try:
        check_layout(
            file_size=file_size, chunk_count=chunk_count, index=index, offset=offset, length=length, limits=LIMITS
        )
    except ChunkBoundsError:
        return
    assert 0 <= index < chunk_count
    assert 0 <= length <= LIMITS.max_payload_bytes
    common = chunk_length_of(chunk_count=chunk_count, index=index, offset=offset, length=length)
    smallest_file = 0 if common is None else (chunk_count - 1) * common + 1
    # The state a file needs grows with its chunk count: bounded by a file the worker accepts.
    assert smallest_file <= LIMITS.max_file_size
    if file_size is not None:
        assert offset + length <= file_size <= LIMITS.max_file_size


@pytest.mark.parametrize(
    "claim, reason",
    [
        ({"chunk_count": 4 * 10**7, "file_size": 400, "index": 0, "offset": 0, "length": 10}, "cannot make a file"),
        ({"chunk_count": 10**12, "file_size": None, "index": 1, "offset": 10, "length": 10}, "at least"),
        (
            {
                "chunk_count": 2 * 10**12,
                "file_size": None,
                "index": 2 * 10**12 - 1,
                "offset": 2 * 10**12 - 1,
                "length": 1,
            },
            "past the largest file",
        ),  # noqa: E501
        (
            {"chunk_count": 2 * 10**12, "file_size": 2 * 10**12, "index": 0, "offset": 0, "length": 1},
            "largest accepted",
        ),
        (
            {"chunk_count": 2**32 + 2, "file_size": 2**31, "index": 2**32 + 1, "offset": 2**32 + 1, "length": 1},
            "past the end",
        ),  # noqa: E501
        ({"chunk_count": 3, "file_size": 30, "index": 1, "offset": 12, "length": 10}, "equal length"),
        ({"chunk_count": 3, "file_size": 30, "index": 2, "offset": 20, "length": 5}, "not at the file's end"),
        ({"chunk_count": 1, "file_size": 10, "index": 0, "offset": 0, "length": 5}, "all of it"),
        ({"chunk_count": 2, "file_size": 10, "index": 0, "offset": 0, "length": 0}, "empty chunk"),
        ({"chunk_count": 1, "file_size": 5 * 1024**4, "index": 0, "offset": 0, "length": 0}, "largest accepted"),
        ({"chunk_count": 1, "file_size": 8 * 1024**2, "index": 0, "offset": 0, "length": 8 * 1024**2}, "carries"),
    ],
)
def test_header_bombs_and_contradictions_are_refused_saying_why(claim: Layout, reason: str) -> None:
    with pytest.raises(ChunkBoundsError, match=reason):
        check_layout(limits=LIMITS, **claim)


def _record(header: Mapping[str, object], payload: bytes) -> bytes:
    raw = json.dumps(header).encode()  # the standard library writes integers of any size, as an attacker can
    return MAGIC + len(raw).to_bytes(4, "big") + raw + payload


@settings(max_examples=300)
@given(
    fields=st.fixed_dictionaries(
        {
            "file_size": st.one_of(st.none(), HUGE),
            "chunk_count": HUGE,
            "index": HUGE,
            "offset": HUGE,
            "generation": st.one_of(st.none(), HUGE),
        }
    ),
    payload=st.binary(max_size=64),
)
def test_the_decoder_refuses_arbitrary_headers_only_with_its_own_error(
    fields: dict[str, int | None], payload: bytes
) -> None:  # noqa: E501
    header = {
        "source": "lab",
        "path": "a.bin",
        "file_hash": "0" * 64,
        "chunk_hash": hashlib.sha256(payload).hexdigest(),
        "length": len(payload),
        "mtime": None,
        **fields,
    }
    try:
        chunk = decode_chunk(_record(header, payload), LIMITS)
    except ChunkDecodeError:
        return
    assert chunk.payload == payload and 0 <= chunk.index < chunk.chunk_count
