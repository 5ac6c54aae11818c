"""One pass over each of this worker's tables: counts per status or state, and the newest rows worth showing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tables.assembly import AssemblyState, Status
from tables.transfer_record import TransferRecord
from tables.transfer_state import State
from tables.transfers import transfers
from web.paging import Newest, cooperative
from web.summary_merge import IN_FLIGHT_SHOWN, RECENT_SHOWN
from web.tables import assembly_summary, iter_assemblies, last_activity

_FAILED_TRANSFER_STATES = (State.FAILED, State.INVALID)


async def assembly_census(now: float) -> dict[str, Any]:
    by_status: Counter[str] = Counter({status.value: 0 for status in Status})
    newest: dict[Status, Newest[tuple[bytes, AssemblyState]]] = {
        Status.ASSEMBLING: Newest(IN_FLIGHT_SHOWN),
        Status.COMPLETED: Newest(RECENT_SHOWN),
        Status.FAILED: Newest(RECENT_SHOWN),
    }
    async for key, state in cooperative(iter_assemblies()):
        by_status[state.status.value] += 1
        newest[state.status].offer(last_activity(state), (key, state))
    rows = {status: [assembly_summary(key, state, now) for key, state in n.rows()] for status, n in newest.items()}
    return {
        "files": dict(by_status),
        "in_flight": rows[Status.ASSEMBLING],
        "recent_completed": rows[Status.COMPLETED],
        "recent_failures": rows[Status.FAILED],
    }


async def transfer_census() -> dict[str, Any]:
    by_state: Counter[str] = Counter({state.value: 0 for state in State})
    failures: Newest[TransferRecord] = Newest(RECENT_SHOWN)
    async for _, record in cooperative(transfers.items()):
        transfer = record.transfer
        by_state[transfer.state.value] += 1
        if transfer.state in _FAILED_TRANSFER_STATES:
            failures.offer(transfer.updated_at, record)
    return {"transfers": dict(by_state), "transfer_failures": [record.summary() for record in failures.rows()]}
