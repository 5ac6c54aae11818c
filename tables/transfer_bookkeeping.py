"""In-memory bookkeeping of one worker's S3 transfers: files in flight, files with work ahead, S3's reachability.

Plain code without Faust, so it can be tested alone; the transfer agent hands it
the table access it needs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager

from tables.transfer_record import TransferRecord


class FileLocks:
    """One lock per file key, forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._users: defaultdict[bytes, int] = defaultdict(int)

    def locked(self, key: bytes) -> bool:
        lock = self._locks.get(key)
        return lock is not None and lock.locked()

    @asynccontextmanager
    async def hold(self, key: bytes) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


class UnsettledTransfers:
    """The keys of records with work still ahead, so the retry timer need not decode the whole table.

    Rebuilt from a full scan after every rebalance, because newly assigned partitions
    bring records written elsewhere; kept current in between by :meth:`note` and
    :meth:`forget`, which must see every record this worker writes or deletes.
    """

    def __init__(
        self,
        scan: Callable[[], Iterable[tuple[bytes, TransferRecord]]],
        load: Callable[[bytes], TransferRecord | None],
    ) -> None:
        self._scan = scan
        self._load = load
        self._keys: set[bytes] = set()
        self._built_for: int | None = None

    def note(self, key: bytes, record: TransferRecord) -> None:
        if record.transfer.terminal:
            self._keys.discard(key)
        else:
            self._keys.add(key)

    def forget(self, key: bytes) -> None:
        """``key``'s record was deleted."""
        self._keys.discard(key)

    def records(self, rebalance_generation: int) -> Iterator[tuple[bytes, TransferRecord]]:
        """The unsettled records, read afresh; ``rebalance_generation`` changes after every rebalance."""
        if rebalance_generation != self._built_for:
            self._keys = {key for key, record in self._scan() if not record.transfer.terminal}
            self._built_for = rebalance_generation
        for key in list(self._keys):  # the caller may write records between two of these
            record = self._load(key)
            if record is None or record.transfer.terminal:
                self._keys.discard(key)
            else:
                yield key, record


class Probe:
    """A slow yes/no question (is S3 reachable?) asked at most once per ``max_age`` seconds.

    ``on_change`` hears every change of the answer, the first one included.
    """

    def __init__(
        self,
        check: Callable[[], Awaitable[bool]],
        *,
        max_age: float,
        on_change: Callable[[bool], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._max_age = max_age
        self._on_change = on_change
        self._clock = clock
        self._answer: bool | None = None
        self._asked_at = -math.inf
        self._lock = asyncio.Lock()  # callers arriving during a check share its answer

    async def __call__(self) -> bool:
        async with self._lock:
            if self._clock() - self._asked_at >= self._max_age:
                answer = await self._check()
                self._asked_at = self._clock()
                if answer != self._answer:
                    self._on_change(answer)
                self._answer = answer
            return bool(self._answer)
