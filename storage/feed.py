"""Hand chunks read on the event loop to a blocking consumer in an executor thread, a few at a time.

Faust tables may only be read on the event loop (the store picks the partition of the
event being processed), while boto3 blocks: the loop reads the chunks and the thread
sends them.  At most ``capacity`` chunks wait between the two, so a file is never held
whole in memory, and the loop serves heartbeats and other events while it waits for room.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")

DEFAULT_CAPACITY = 4
_END = object()


class FeedAborted(Exception):
    """The chunks stopped coming: the loop side failed or was cancelled."""


class _ConsumerStopped(Exception):
    """The consumer returned or failed before taking every chunk; its own outcome says why."""


class ChunkFeed:
    """A bounded, one-way hand-over: :meth:`put` on the loop, iteration in the consumer thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int = DEFAULT_CAPACITY) -> None:
        self._loop = loop
        self._capacity = capacity
        # Unbounded on purpose: the bound is enforced on the loop side, which must never block,
        # and the end and abort markers must always fit.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting = 0  # handed over, not yet taken (loop side only)
        self._room = asyncio.Event()
        self._consumer_stopped = False

    async def put(self, chunk: bytes) -> None:
        while self._waiting >= self._capacity and not self._consumer_stopped:
            self._room.clear()
            await self._room.wait()
        if self._consumer_stopped:
            raise _ConsumerStopped
        self._waiting += 1
        self._queue.put(chunk)

    def end(self) -> None:
        self._queue.put(_END)

    def abort(self) -> None:
        self._queue.put(FeedAborted("the chunk reader stopped before the end of the file"))

    def __iter__(self) -> Iterator[bytes]:
        """Consumer thread: the chunks until the end marker; raises :class:`FeedAborted` on abort."""
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, FeedAborted):
                raise item
            self._loop.call_soon_threadsafe(self._taken)
            yield item

    def consumer_stopped(self) -> None:
        """Consumer thread: wakes a :meth:`put` waiting for room that will never come."""
        self._loop.call_soon_threadsafe(self._stop)

    def _taken(self) -> None:
        self._waiting -= 1
        self._room.set()

    def _stop(self) -> None:
        self._consumer_stopped = True
        self._room.set()


async def feed_thread(executor: Executor, consume: Callable[[Iterable[bytes]], T], chunks: Iterable[bytes]) -> T:
    """Run ``consume(feed)`` in ``executor`` while iterating ``chunks`` on the loop into the feed.

    Returns what ``consume`` returns and raises what it raises; an exception while
    iterating ``chunks`` (or a cancellation) aborts the feed, so the consumer stops
    too, and propagates.
    """
    loop = asyncio.get_running_loop()
    feed = ChunkFeed(loop)

    def run() -> T:
        try:
            return consume(feed)
        finally:
            feed.consumer_stopped()

    consumer = loop.run_in_executor(executor, run)
    try:
        for chunk in chunks:
            await feed.put(chunk)
    except _ConsumerStopped:
        pass
    except BaseException:
        feed.abort()
        # Its FeedAborted is the echo of this exception: mark it seen so asyncio does not log it.
        consumer.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise
    else:
        feed.end()
    return await consumer
