"""Answering about one file from the worker that owns its partition, whichever worker was asked.

Faust's ``@app.table_route`` finds the owner the same way (``app.router.key_store``:
the key's partition of the table's changelog, looked up in the assignment every member
knows), but forwards the request unchanged: during a rebalance two workers that each
believe the other owns the partition would pass the request back and forth, and a dead
owner turns into a 500.  Here a forwarded request is marked, so it is forwarded at most
once, and every "cannot answer now" is a 503 that says why, so clients know to ask again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from faust.types import CollectionT
from yarl import URL

from app import app
from tables.files import tables_ready

ROUTED_FROM_HEADER = "X-Filestream-Routed-From"
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=10)


def same_node(a: URL, b: URL) -> bool:
    """Whether two web server URLs name the same worker (Faust's router compares them this way)."""
    return (a.host, a.port) == (b.host, b.port)


async def answer_from_owner(
    view: Any, request: Any, table: CollectionT, key: bytes, answer: Callable[[], Awaitable[Any]]
) -> Any:
    """``answer()`` here if this worker owns ``key`` in ``table``; else the owner's answer to the same request."""
    try:
        owner = app.router.key_store(table.name, key)
    except KeyError:
        return view.json({"error": "partitions are not assigned yet; ask again shortly"}, status=503)
    here = URL(str(app.conf.canonical_url))
    if same_node(owner, here):
        if not tables_ready():
            return view.json(
                {"error": "this worker's partitions are being reassigned or its tables restored; ask again shortly"},
                status=503,
            )
        return await answer()
    if ROUTED_FROM_HEADER in request.headers:
        # The worker that sent it here thinks this one owns the partition, this one thinks otherwise.
        return view.json({"error": "the partition is moving between workers; ask again shortly"}, status=503)
    return await _forward(view, request, owner, here)


async def _forward(view: Any, request: Any, owner: URL, here: URL) -> Any:
    # request.url keeps the path as the client encoded it: file names may hold '%', '?', '#', spaces.
    url = request.url.with_scheme(owner.scheme or "http").with_host(owner.host).with_port(owner.port)
    headers = {ROUTED_FROM_HEADER: str(here)}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    try:
        async with app.http_client.get(url, headers=headers, timeout=FORWARD_TIMEOUT) as response:
            body = await response.read()
            return view.bytes(body, content_type=response.content_type, status=response.status)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return view.json(
            {"error": f"the owner of this partition, {owner}, does not answer ({type(exc).__name__}); ask again"},
            status=503,
        )
