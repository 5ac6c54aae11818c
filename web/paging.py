"""Limits and offsets of the list views, so no table size ever makes a response unbounded."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# Rows examined between two yields to the event loop: a scan of 100 000 table entries must
# not hold up heartbeats, agents and other requests for its whole duration.
ROWS_PER_YIELD = 500


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Page:
        """``?limit=&offset=``, clamped to 1..MAX_LIMIT and 0..; a value that is not a number gets the default."""
        return cls(
            limit=min(MAX_LIMIT, max(1, _int_or(query.get("limit"), DEFAULT_LIMIT))),
            offset=max(0, _int_or(query.get("offset"), 0)),
        )

    async def collect(self, rows: Iterable[T]) -> tuple[list[T], int]:
        """The rows of this page, and how many rows there are in all."""
        page: list[T] = []
        total = 0
        async for row in cooperative(rows):
            if self.offset <= total < self.offset + self.limit:
                page.append(row)
            total += 1
        return page, total

    async def collect_newest(self, rows: Iterable[T], key: Callable[[T], Any]) -> tuple[list[T], int]:
        """Like :meth:`collect`, newest (largest ``key``) first; holds at most offset + limit rows."""
        newest: Newest[T] = Newest(self.offset + self.limit)
        total = 0
        async for row in cooperative(rows):
            newest.offer(key(row), row)
            total += 1
        return newest.rows()[self.offset :], total

    def body(self, rows_name: str, rows: list[Any], total: int, **extra: Any) -> dict[str, Any]:
        """The JSON body of a list view: the rows, the totals and where the next page starts."""
        following = self.offset + len(rows)
        return {
            **extra,
            "total": total,
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": following if following < total else None,
            rows_name: rows,
        }


class Newest(Generic[T]):
    """The ``size`` rows with the largest keys among all offered, in one pass with bounded memory."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[tuple[Any, int, T]] = []
        self._offered = 0

    def offer(self, key: Any, row: T) -> None:
        # The running count breaks ties, so rows themselves are never compared.
        entry = (key, self._offered, row)
        self._offered += 1
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heappushpop(self._heap, entry)

    def rows(self) -> list[T]:
        """Largest key first; among equal keys, the later offered first."""
        return [row for _, _, row in sorted(self._heap, key=lambda entry: entry[:2], reverse=True)]


async def cooperative(rows: Iterable[T]) -> AsyncIterator[T]:
    """``rows``, yielding to the event loop every :data:`ROWS_PER_YIELD` of them."""
    for count, row in enumerate(rows, 1):
        yield row
        if count % ROWS_PER_YIELD == 0:
            await asyncio.sleep(0)


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
