"""``/metrics``: this worker's metrics in the Prometheus text format (``telemetry.registry``).

The counters and histograms are kept as things happen (``telemetry.py``, and Faust's
sensor installed here); the gauges are read when scraped: files per status and transfers
per state from this worker's tables, consumer lag from the consumer.

prometheus_client renders a registry synchronously, while the tables are read on the
event loop in slices (a pass over 100 000 entries must not hold up heartbeats): so the
page is rendered in an executor thread, and the gauges' collector, called in that
thread, asks the event loop for the readings and waits for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

import telemetry
import transport
from app import app
from tables.files import tables_ready
from web.access import guarded_page
from web.census import assembly_census, transfer_census

log = logging.getLogger(__name__)

# Below Prometheus's default scrape timeout (10 s): a slow count costs the gauges, not the whole scrape.
READINGS_TIMEOUT = 8.0

app.monitor = telemetry.FaustSensor(metrics=telemetry.faust_metrics)


@guarded_page("/metrics")
async def metrics_view(web, request):
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, telemetry.registry)
    return web.bytes(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def read_in_worker() -> telemetry.PipelineReadings:
    """Called by the registry in the rendering thread: the readings, taken on the worker's event loop."""
    future = asyncio.run_coroutine_threadsafe(pipeline_readings(), app.loop)
    try:
        return future.result(READINGS_TIMEOUT)
    except TimeoutError:
        future.cancel()
        log.warning("/metrics: reading the tables took over %.0f s; this scrape has no gauges", READINGS_TIMEOUT)
        return telemetry.PipelineReadings()


async def pipeline_readings() -> telemetry.PipelineReadings:
    lags = tuple(consumer_lags())
    if not tables_ready():
        # A restoring table holds a passing state.
        return telemetry.PipelineReadings(consumer_lag=lags)
    files = (await assembly_census(time.time()))["files"]
    transfers = (await transfer_census())["transfers"]
    return telemetry.PipelineReadings(files=files, transfers=transfers, consumer_lag=lags)


def consumer_lags() -> Iterator[tuple[str, int, int]]:
    """Per partition this worker consumes (changelogs aside): high watermark minus committed offset.

    Every partition whose high watermark is known (once a fetch answered for it); one never
    committed counts from offset 0.  The records of files not yet settled stay uncommitted
    (transport.CommitHolds), so they count here too: a takeover would read them again.
    """
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    consumer = app.consumer
    for tp in app.assignor.assigned_actives():
        if tp.topic in changelogs:
            continue
        highwater = consumer.highwater(tp)
        if highwater is not None:
            # Faust's own consumer (in-process tests) keeps no committed offsets: count from 0 there.
            committed = consumer.committed_offset(tp) if isinstance(consumer, transport.Consumer) else None
            yield tp.topic, tp.partition, max(0, highwater - (committed or 0))


telemetry.registry.register(telemetry.PipelineGauges(read_in_worker))
