"""Limits, offsets and filters of the list views: no table size makes a response unbounded, and
a query parameter a view cannot use is refused with a reason instead of crashing it."""

from __future__ import annotations

import asyncio
import heapq
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from errors import FilestreamError

T = TypeVar("T")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# Offsets travel back in every answer, and the JSON encoder (orjson) refuses integers beyond 64 bits.
MAX_OFFSET = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
QUOTED_CHARS = 40  # of a refused value, in the error: a query string can be kilobytes long
# Rows examined between two yields to the event loop: a scan of 100 000 table entries must
# not hold up heartbeats, agents and other requests for its whole duration.
ROWS_PER_YIELD = 500


class QueryError(FilestreamError, ValueError):
    """A query parameter a view cannot use: the view answers 400 with :meth:`body`."""

    def __init__(self, parameter: str, expected: str, text: str) -> None:
        shown = text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS] + "…"
        super().__init__(f"{parameter}: expected {expected}, got {shown!r}")
        self.parameter = parameter

    def body(self) -> dict[str, str]:
        return {"error": str(self), "parameter": self.parameter}


def whole_number(query: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """``?name=`` as a whole number from ``minimum`` to :data:`MAX_OFFSET`; absent or empty: ``default``.

    ASCII digits only: ``int()`` would also take signs, spaces, underscores and other scripts' digits.
    """
    text = query.get(name) or ""
    if not text:
        return default
    digits = text.lstrip("0") or "0"
    # Length first: int() refuses strings of more than 4300 digits with an error of its own.
    if _DIGITS.fullmatch(text) and len(digits) <= len(str(MAX_OFFSET)):
        value = int(digits)
        if minimum <= value <= MAX_OFFSET:
            return value
    raise QueryError(name, f"a whole number from {minimum} to {MAX_OFFSET}", text)


def choice(query: Mapping[str, str], name: str, allowed: Collection[str]) -> str | None:
    """``?name=`` if it is one of ``allowed``; absent or empty: None (no filter)."""
    text = query.get(name) or ""
    if not text:
        return None
    if text not in allowed:
        raise QueryError(name, f"one of {', '.join(allowed)}", text)
    return text


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Page:
        """``?limit=&offset=``; a limit above :data:`MAX_LIMIT` is served as MAX_LIMIT.

        Raises :class:`QueryError` for a limit or offset that is not a whole number in range
        (limit at least 1, offset at least 0, both at most :data:`MAX_OFFSET`).
        """
        return cls(
            limit=min(MAX_LIMIT, whole_number(query, "limit", DEFAULT_LIMIT, minimum=1)),
            offset=whole_number(query, "offset", 0, minimum=0),
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

    async def collect_counted(self, rows: Iterable[T], total: int) -> tuple[list[T], int]:
        """Like :meth:`collect` when the count is known already: reads no further than the page's end."""
        page: list[T] = []
        end = self.offset + self.limit
        async for index, row in cooperative(enumerate(rows)):
            if index >= end:
                break
            if index >= self.offset:
                page.append(row)
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
