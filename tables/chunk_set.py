"""Which chunks of a file have arrived, as sorted half-open ranges of indexes.

Chunks mostly arrive in order, so a file of any size in flight costs one range; chunks
that arrive scattered cost one range per gap.  Unlike a bitmap sized by the header's
chunk count, the memory (and the changelog record) grows only with chunks that really
arrived, so no header can make a worker allocate for chunks it was never sent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator


class ChunkSet:
    __slots__ = ("_starts", "_ends", "_count")

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._count = 0
        for start, end in ranges or ():
            if start < 0 or end <= start:
                raise ValueError(f"bad range [{start}, {end})")
            if self._ends and start <= self._ends[-1]:
                raise ValueError(f"ranges overlap or are out of order at [{start}, {end})")
            self._starts.append(start)
            self._ends.append(end)
            self._count += end - start

    def __contains__(self, index: int) -> bool:
        slot = bisect_right(self._starts, index) - 1
        return slot >= 0 and index < self._ends[slot]

    def __len__(self) -> int:
        return self._count

    def add(self, index: int) -> bool:
        """Record chunk ``index``; False if it was already there."""
        if index < 0:
            raise ValueError(f"negative chunk index {index}")
        slot = bisect_right(self._starts, index) - 1
        if slot >= 0 and index < self._ends[slot]:
            return False
        joins_left = slot >= 0 and self._ends[slot] == index
        joins_right = slot + 1 < len(self._starts) and self._starts[slot + 1] == index + 1
        if joins_left and joins_right:
            self._ends[slot] = self._ends[slot + 1]
            del self._starts[slot + 1], self._ends[slot + 1]
        elif joins_left:
            self._ends[slot] = index + 1
        elif joins_right:
            self._starts[slot + 1] = index
        else:
            self._starts.insert(slot + 1, index)
            self._ends.insert(slot + 1, index + 1)
        self._count += 1
        return True

    def discard(self, index: int) -> bool:
        """Forget chunk ``index``; False if it was not there."""
        slot = bisect_right(self._starts, index) - 1
        if slot < 0 or index >= self._ends[slot]:
            return False
        start, end = self._starts[slot], self._ends[slot]
        if end - start == 1:
            del self._starts[slot], self._ends[slot]
        elif index == start:
            self._starts[slot] = index + 1
        elif index == end - 1:
            self._ends[slot] = index
        else:
            self._ends[slot] = index
            self._starts.insert(slot + 1, index + 1)
            self._ends.insert(slot + 1, end)
        self._count -= 1
        return True

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self._starts, self._ends, strict=True):
            yield from range(start, end)

    def missing(self, count: int, limit: int) -> list[int]:
        """Up to ``limit`` of the indexes ``0..count-1`` not in the set, in order."""
        found: list[int] = []
        expected = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            found.extend(range(expected, min(start, count, expected + limit - len(found))))
            expected = max(expected, end)
            if len(found) >= limit or expected >= count:
                break
        found.extend(range(expected, min(count, expected + limit - len(found))))
        return found[:limit]

    def to_list(self) -> list[int]:
        """Flat ``[start, end, start, end, ...]``, as the state record stores it."""
        return [bound for pair in zip(self._starts, self._ends, strict=True) for bound in pair]

    @classmethod
    def from_list(cls, flat: list[int]) -> ChunkSet:
        if len(flat) % 2:
            raise ValueError("a chunk set needs an even number of bounds")
        return cls(list(zip(flat[::2], flat[1::2], strict=True)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChunkSet) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return f"ChunkSet({self.ranges()!r})"
