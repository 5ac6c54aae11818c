"""``/metrics``: this worker's metrics in the Prometheus text format.

The counters and the latency histogram are kept by the agents as things happen
(``telemetry.py``); the gauges are read when scraped: files per status and transfers
per state from this worker's tables, consumer lag from the consumer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from faust.types import TP

import telemetry
from app import app
from metrics import CONTENT_TYPE
from web.access import guarded_page
from web.census import assembly_census, transfer_census


@guarded_page("/metrics")
async def metrics_view(web, request):
    await refresh_table_gauges()
    telemetry.consumer_lag.replace(
        ({"topic": tp.topic, "partition": str(tp.partition)}, lag) for tp, lag in sorted(consumer_lags())
    )
    return web.bytes(telemetry.registry.render().encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})


async def refresh_table_gauges() -> None:
    if app.in_recovery:
        # A restoring table holds a passing state; no value is better than a wrong one.
        telemetry.files_by_status.replace([])
        telemetry.transfers_by_state.replace([])
        return
    files = (await assembly_census(time.time()))["files"]
    transfers = (await transfer_census())["transfers"]
    telemetry.files_by_status.replace(({"status": status}, count) for status, count in files.items())
    telemetry.transfers_by_state.replace(({"state": state}, count) for state, count in transfers.items())


def consumer_lags() -> Iterator[tuple[TP, int]]:
    """Per partition this worker consumes (changelogs aside): high watermark minus committed offset.

    Only partitions for which both are known: the high watermark once a fetch answered
    for the partition, the committed offset once this worker committed on it.
    """
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    committed = app.monitor.tp_committed_offsets
    for tp in app.assignor.assigned_actives():
        if tp.topic in changelogs or tp not in committed:
            continue
        highwater = app.consumer.highwater(tp)
        if highwater is not None:
            yield tp, max(0, highwater - committed[tp])
