"""``/filestream/health/``: readiness for load balancers and test harnesses, open without a token."""

from __future__ import annotations

from typing import Any

from app import app, settings
from tables.files import tables_ready


@app.page("/filestream/health/")
async def health(web: Any, request: Any) -> Any:
    """Ready once partitions are assigned and their tables restored; the assigned partitions of the chunk topic."""
    try:
        assignment = app.consumer.assignment()
    except Exception:  # the consumer is not started yet; nothing is assigned
        assignment = set()
    assigned = sorted(tp.partition for tp in assignment if tp.topic == settings.chunks_topic)
    recovering = bool(app.in_recovery)
    rebalancing = bool(app.rebalancing)
    return web.json(
        {
            "ready": bool(assignment) and tables_ready(),
            "app_id": settings.app_id,
            "recovering": recovering,
            "rebalancing": rebalancing,
            "assigned_partitions": assigned,
        }
    )
