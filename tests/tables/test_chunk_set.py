"""ChunkSet behaves as a set of chunk indexes, stored as few ranges as the indexes allow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tables.chunk_set import ChunkSet

OPERATIONS = st.lists(st.tuples(st.sampled_from(["add", "discard"]), st.integers(0, 200)), max_size=300)


@given(OPERATIONS)
def test_it_holds_exactly_the_indexes_added_and_not_discarded(operations: list[tuple[str, int]]) -> None:
    chunks, model = ChunkSet(), set()
    for operation, index in operations:
        if operation == "add":
            assert chunks.add(index) == (index not in model)
            model.add(index)
        else:
            assert chunks.discard(index) == (index in model)
            model.discard(index)
        assert len(chunks) == len(model)
    assert list(chunks) == sorted(model)
    assert all((index in chunks) == (index in model) for index in range(-1, 202))
    ranges = chunks.ranges()
    # As few ranges as the indexes allow: ranges never touch.
    assert all(end < next_start for (_, end), (next_start, _) in zip(ranges, ranges[1:], strict=False))
    assert ChunkSet.from_list(chunks.to_list()) == chunks
    assert chunks.missing(201, limit=1000) == [index for index in range(201) if index not in model]
    assert chunks.missing(201, limit=3) == [index for index in range(201) if index not in model][:3]


def test_in_order_arrival_of_a_huge_file_costs_one_range() -> None:
    chunks = ChunkSet()
    for index in range(100_000):
        chunks.add(index)
    assert chunks.to_list() == [0, 100_000]


def test_a_huge_claimed_count_costs_nothing_until_chunks_arrive() -> None:
    chunks = ChunkSet()
    chunks.add(10**12 - 1)
    assert chunks.to_list() == [10**12 - 1, 10**12]
    assert chunks.missing(10**12, limit=2) == [0, 1]


@pytest.mark.parametrize("flat", [[1], [3, 2], [0, 2, 1, 4], [-1, 2]])
def test_malformed_stored_ranges_are_refused(flat: list[int]) -> None:
    with pytest.raises(ValueError):
        ChunkSet.from_list(flat)
