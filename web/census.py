"""Files per status, transfers per state, and the newest rows worth showing, from the tables' censuses.

Each table keeps a :class:`~tables.census.Census` per partition, built once by a scan when
first asked for under an assignment and kept current as records are saved: a summary costs
the files in flight and a few rows per partition, not the table's whole history.
"""

from __future__ import annotations

import heapq
from typing import Any

from tables.census import FAILED_TRANSFER_STATES, IN_FLIGHT_SHOWN, RECENT_SHOWN, last_activity
from tables.files import active_partitions, assemblies
from tables.transfers import transfers
from web.tables import assembly_summary


async def assembly_census(now: float) -> dict[str, Any]:
    censuses = await assemblies.census.partitions(sorted(active_partitions()))
    by_status = {label: sum(census.counts[label] for census in censuses) for label in assemblies.census.rules.labels}

    def newest(label: str, shown: int) -> list[dict[str, Any]]:
        rows = [row for census in censuses for row in census.rows(label, shown)]
        top = heapq.nlargest(shown, rows, key=lambda row: last_activity(row[1]))
        return [assembly_summary(key, state, now) for key, state in top]

    return {
        "files": by_status,
        "in_flight": newest("assembling", IN_FLIGHT_SHOWN),
        "recent_completed": newest("completed", RECENT_SHOWN),
        "recent_failures": newest("failed", RECENT_SHOWN),
    }


async def transfer_census() -> dict[str, Any]:
    censuses = await transfers.census.partitions(sorted(active_partitions()))
    by_state = {label: sum(census.counts[label] for census in censuses) for label in transfers.census.rules.labels}
    failed = [row for census in censuses for state in FAILED_TRANSFER_STATES for row in census.rows(state.value)]
    top = heapq.nlargest(RECENT_SHOWN, failed, key=lambda row: row[1].transfer.updated_at)
    return {"transfers": by_state, "transfer_failures": [record.summary() for _, record in top]}
