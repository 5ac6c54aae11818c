"""The uploader's producer side: the budget of bytes handed to the producer and not yet acknowledged."""

import asyncio

from client.chunk_producer import ByteBudget


def test_the_byte_budget_waits_for_releases_and_lets_one_oversized_request_through():
    async def go():
        budget = ByteBudget(limit=100)
        await budget.acquire(250)  # alone: let through
        waiter = asyncio.create_task(budget.acquire(10))
        await asyncio.sleep(0)
        assert not waiter.done()
        budget.release(250)
        await asyncio.wait_for(waiter, 1)
        assert budget.used == 10

    asyncio.run(go())
