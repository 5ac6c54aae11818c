"""Several workers' summaries (``/filestream/summary/?scope=worker``) as one, as plain code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tables.census import IN_FLIGHT_SHOWN, RECENT_SHOWN

# The lists of a summary: how each is ordered, newest first, and how many rows it keeps.
LISTS: dict[str, tuple[Callable[[dict], Any], int]] = {
    "in_flight": (lambda row: -row["idle_seconds"], IN_FLIGHT_SHOWN),
    "recent_completed": (lambda row: row["finished_at"] or 0, RECENT_SHOWN),
    "recent_failures": (lambda row: row["finished_at"] or 0, RECENT_SHOWN),
    "transfer_failures": (lambda row: row["updated_at"], RECENT_SHOWN),
}


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' summaries as one: numbers added, lists merged newest first and cut to size."""
    merged: dict[str, Any] = {"workers": [worker for summary in summaries for worker in summary["workers"]]}
    for summary in summaries:
        for name, value in summary.items():
            if name == "workers":
                continue
            if name in LISTS:
                merged.setdefault(name, []).extend(value)
            else:
                merged[name] = _add(merged[name], value) if name in merged else value
    for name, (order, shown) in LISTS.items():
        merged[name] = sorted(merged.get(name, []), key=order, reverse=True)[:shown]
    return merged


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {key: _add(a[key], b[key]) if key in a and key in b else a.get(key, b.get(key)) for key in {**a, **b}}
    return a + b
