"""``/filestream/summary/``: the pipeline at a glance, for the dashboard and for scripts.

The tables' counters (web/census.py, tables/census.py: files per status, the files in
flight, the latest completions and failures, transfers per state and their failures; no
pass over the tables once built) plus this worker's counters and throughput.
``?scope=cluster`` (the default) adds every other worker's own summary, asked over HTTP,
and merges them: any worker's dashboard shows the whole pipeline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from yarl import URL

import telemetry
from app import app, chunks_topic, settings
from tables.assembly import Status
from tables.files import tables_ready
from tables.transfer_state import State
from web.access import guarded_page
from web.census import assembly_census, transfer_census
from web.paging import choice
from web.routing import same_node
from web.summary_merge import LISTS, merge_summaries
from web.tokens import auth_headers

PEER_TIMEOUT = aiohttp.ClientTimeout(total=3)


@guarded_page("/filestream/summary/")
async def summary_view(web, request):
    """``?scope=cluster`` (default): every worker's summary merged; ``?scope=worker``: this worker's only."""
    scope = choice(request.query, "scope", ["cluster", "worker"]) or "cluster"
    summary = await worker_summary()
    if scope == "cluster":
        summary = merge_summaries([summary, *await asyncio.gather(*map(peer_summary, peer_urls()))])
    return web.json(summary)


def assigned_partitions() -> list[int]:
    topic = chunks_topic.get_topic_name()
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


async def worker_summary() -> dict[str, Any]:
    now = time.time()
    recovering = not tables_ready()
    summary: dict[str, Any] = {
        "workers": [
            {
                "url": str(app.conf.canonical_url),
                "partitions": assigned_partitions(),
                "recovering": recovering,
                "uptime_seconds": round(now - telemetry.started_at, 1),
            }
        ],
        "throughput": {  # over the last THROUGHPUT_WINDOW_SECONDS
            "bytes_per_second": telemetry.bytes_throughput.per_second(),
            "files_per_second": telemetry.files_throughput.per_second(),
        },
        "counters": telemetry.counters(),
        "files": {status.value: 0 for status in Status},
        "transfers": {state.value: 0 for state in State},
        **{name: [] for name in LISTS},
    }
    if not recovering:  # a restoring table would show a passing state as the pipeline's
        summary.update(await assembly_census(now))
        summary.update(await transfer_census())
    return summary


def peer_urls() -> list[URL]:
    """The other workers owning table partitions, as the partition assignment names them."""
    here = URL(str(app.conf.canonical_url))
    urls = (URL(url) for url in app.router.tables_metadata())
    return [url for url in urls if not same_node(url, here)]


async def peer_summary(url: URL) -> dict[str, Any]:
    """A peer's own summary; when it cannot answer, a summary naming it and why."""
    summary_url = url.with_path("/filestream/summary/").with_query(scope="worker")
    try:
        async with app.http_client.get(
            summary_url, headers=auth_headers(settings.web_token), timeout=PEER_TIMEOUT
        ) as response:
            response.raise_for_status()
            return await response.json()
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return {"workers": [{"url": str(url), "error": f"{type(exc).__name__}: {exc}"}]}
