"""Running an agent in-process with Faust's ``agent.test_context()``, one handled value at a time.

Faust's test wrapper returns from ``put(wait=True)`` as soon as an agent that yields nothing
*takes* the value from its stream, before the agent has handled it.  filestream's agents yield
nothing, so :class:`AgentUnderTest` waits for the moment that proves a value handled instead:
the agent asking its channel for the next one while none is queued.  The channel
(:class:`WatchedChannel`) is handed to ``test_context(channel=...)``, Faust's own parameter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import faust
from faust.types import AgentT, EventT

import agents.reassembly as reassembly
from app import app

# Longer than any handling here takes (a few ms), short enough that a stuck agent fails the test soon.
HANDLING_TIMEOUT = 10.0


class WatchedChannel(faust.Channel):
    """A channel that counts the readers waiting on it for a value.

    Faust iterates a clone of the channel it is given (``Channel.__aiter__``); the count is shared
    by every clone, so the test reads it from the clone the agent's stream reads.
    """

    def __init__(self, *args: Any, waiting: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = waiting if waiting is not None else [0]

    def _clone_args(self) -> dict[str, Any]:
        return {**super()._clone_args(), "waiting": self.waiting}

    async def __anext__(self) -> EventT:
        self.waiting[0] += 1
        try:
            return await super().__anext__()
        finally:
            self.waiting[0] -= 1


class AgentUnderTest:
    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    async def put(self, value: bytes | None, *, key: bytes | None, partition: int) -> EventT:
        """Hand the agent one record of ``partition`` and return its event once the agent has handled it."""
        event: EventT = await self.wrapper.put(value, key=key, partition=partition, wait=False)
        await self.handled()
        return event

    async def handled(self) -> None:
        channel = self.wrapper.stream().channel
        deadline = time.monotonic() + HANDLING_TIMEOUT
        while not (channel.waiting[0] and channel.queue.empty()):
            if self.wrapper.crash_reason is not None:
                raise AssertionError(f"the agent crashed: {self.wrapper.crash_reason!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent did not come back for its next record within {HANDLING_TIMEOUT}s")
            await asyncio.sleep(0.001)


@asynccontextmanager
async def running(agent: AgentT) -> AsyncIterator[AgentUnderTest]:
    """The agent's test context, with one actor.

    Faust's test wrapper hands every actor the same stream object (``AgentTestWrapper.stream``),
    so actors beside each other would take each other's current event: one is what it runs
    faithfully.  How many run side by side is Faust's business, not the agent's logic.
    """
    async with agent.test_context(channel=WatchedChannel(app), concurrency=1) as wrapper:
        yield AgentUnderTest(wrapper)


async def reassemble(messages: list[tuple[bytes, bytes]], *, partition: int) -> list[EventT]:
    """The chunk records through the reassembly agent, in order; their events, each handled."""
    async with running(reassembly.reassemble) as agent:
        return [await agent.put(value, key=key, partition=partition) for key, value in messages]
