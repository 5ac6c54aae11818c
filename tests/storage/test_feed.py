"""storage.feed: chunks read on the loop reach a blocking consumer thread, a bounded few at a time."""

import asyncio
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import pytest

from storage.feed import DEFAULT_CAPACITY, FeedAborted, feed_thread


@pytest.fixture
def executor():
    with ThreadPoolExecutor(2) as pool:
        yield pool


class Tracker:
    """Counts chunks produced and consumed, and the most ever produced but not yet consumed."""

    def __init__(self) -> None:
        self.produced = 0
        self.consumed = 0
        self.most_waiting = 0
        self._lock = threading.Lock()

    def chunks(self, count: int) -> Iterable[bytes]:
        for index in range(count):
            with self._lock:
                self.produced += 1
                self.most_waiting = max(self.most_waiting, self.produced - self.consumed)
            yield index.to_bytes(4, "big")

    def took(self) -> None:
        with self._lock:
            self.consumed += 1


def test_every_chunk_arrives_in_order_with_a_bounded_backlog(executor):
    tracker = Tracker()

    def slow_consumer(feed) -> list[int]:
        received = []
        for chunk in feed:
            time.sleep(0.002)
            tracker.took()
            received.append(int.from_bytes(chunk, "big"))
        return received

    received = asyncio.run(feed_thread(executor, slow_consumer, tracker.chunks(200)))
    assert received == list(range(200))
    # the backlog, plus the one the consumer holds and the one being produced
    assert tracker.most_waiting <= DEFAULT_CAPACITY + 2


def test_the_loop_keeps_running_while_the_consumer_is_slow(executor):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    def slow_consumer(feed) -> int:
        return sum(time.sleep(0.05) or len(chunk) for chunk in feed)

    async def run():
        task = asyncio.create_task(ticker())
        total = await feed_thread(executor, slow_consumer, (b"x" * 10 for _ in range(10)))
        task.cancel()
        return total

    assert asyncio.run(run()) == 100
    assert ticks >= 20


def test_a_consumer_failure_stops_the_producer_and_is_raised(executor):
    tracker = Tracker()

    def failing_consumer(feed) -> None:
        for index, _ in enumerate(feed):
            if index == 2:
                raise ConnectionError("S3 went away")

    with pytest.raises(ConnectionError, match="went away"):
        asyncio.run(feed_thread(executor, failing_consumer, tracker.chunks(10_000)))
    assert tracker.produced < 20


def test_a_consumer_that_stops_before_reading_does_not_hang_the_producer(executor):
    def refusing_consumer(feed) -> None:
        raise PermissionError("access denied")

    with pytest.raises(PermissionError):
        asyncio.run(feed_thread(executor, refusing_consumer, (b"x" for _ in range(10_000))))


def test_a_producer_failure_aborts_the_consumer_and_is_raised(executor):
    seen: list[BaseException] = []

    def consumer(feed) -> None:
        try:
            for _ in feed:
                pass
        except FeedAborted as exc:
            seen.append(exc)
            raise

    def broken_chunks():
        yield b"a"
        yield b"b"
        raise KeyError("payload 2 is gone")

    async def run():
        with pytest.raises(KeyError, match="payload 2"):
            await feed_thread(executor, consumer, broken_chunks())
        # The consumer ends on its own thread; it tells the loop, so keep the loop open meanwhile.
        for _ in range(200):
            if seen:
                return
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert len(seen) == 1
