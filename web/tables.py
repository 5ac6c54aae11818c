"""JSON list views of this worker's tables: files, transfers, processor results, digests.

Each worker answers for the partitions it actively owns; every list is paged
(``?limit=&offset=``, at most :data:`~web.paging.MAX_LIMIT` rows).  State only, never file contents.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

from agents.reassembly import spool
from processors.api import registry
from processors.results import ResultStatus
from tables.assembly import AssemblyState, Status
from tables.census import last_activity
from tables.files import active_partitions, assemblies, assemblies_table, tables_ready
from tables.processor_results import iter_results, processor_results
from tables.transfer_state import State
from tables.transfers import transfers, transfers_table
from web.access import guarded_page
from web.paging import Page, choice, cooperative

RECOVERING = {"error": "tables are being restored; ask again shortly"}


def iter_assemblies() -> Iterator[tuple[bytes, AssemblyState]]:
    """Every assembly state of the partitions this worker actively owns."""
    return assemblies.items()


def assembly_summary(key: bytes, state: AssemblyState, now: float) -> dict[str, Any]:
    return {
        "file": key.decode("utf-8", "replace"),
        "generation": state.generation,
        "status": state.status.value,
        # A finished state drops its bitmap; a completed file did receive every chunk.
        "chunks_received": state.chunk_count if state.status is Status.COMPLETED else state.received_count,
        "chunk_count": state.chunk_count,
        "file_size": state.file_size,
        "file_hash": state.file_hash,
        "rejected_chunks": state.rejected_chunks,
        "partition": state.partition,
        "first_chunk_at": state.first_chunk_at,
        "age_seconds": round(now - state.first_chunk_at, 3),
        "idle_seconds": round(now - state.last_chunk_at, 3),
        "finished_at": state.finished_at,
        "reason": state.reason,
    }


__all__ = ["assembly_summary", "iter_assemblies", "last_activity"]


async def census_counts(table: Any) -> dict[str, int]:
    """Entries per label of this worker's partitions, from the table's census (no scan once built)."""
    censuses = await table.census.partitions(sorted(active_partitions()))
    return {label: sum(census.counts[label] for census in censuses) for label in table.census.rules.labels}


@guarded_page("/filestream/files/")
async def files_view(web, request):
    """Files of this worker's partitions: ``?status=assembling&order=recent&limit=100&offset=0``.

    ``order=key`` (default) lists in RocksDB key order per partition; ``order=recent`` lists
    the most recently finished (or, while assembling, most recently active) first.
    """
    page = Page.from_query(request.query)
    wanted_status = choice(request.query, "status", [status.value for status in Status])
    order = choice(request.query, "order", ["key", "recent"])
    now = time.time()
    matching = (
        (key, state) for key, state in iter_assemblies() if not wanted_status or state.status.value == wanted_status
    )
    if order == "recent":
        rows, total = await page.collect_newest(matching, key=lambda entry: last_activity(entry[1]))
    elif not tables_ready():  # no census while tables restore
        rows, total = await page.collect(matching)
    else:
        counts = await census_counts(assemblies)
        total = counts[wanted_status] if wanted_status else sum(counts.values())
        rows, total = await page.collect_counted(matching, total)
    return web.json(page.body("files", [assembly_summary(key, state, now) for key, state in rows], total))


@guarded_page("/filestream/tables/digest/")
async def tables_digest(web, request):
    """Entry count and an order-independent digest of each table's entries, for comparing replicas.

    The digest is the sum, modulo 2**256, of each entry's SHA-256: streaming, and equal for
    equal contents whatever order partitions are iterated in.
    """
    result = {}
    tables = (
        ("assemblies", assemblies_table),
        ("transfers", transfers_table),
        ("processor-results", processor_results),
    )
    for name, table in tables:
        total = 0
        count = 0
        async for key, value in cooperative(table.items()):
            entry = hashlib.sha256(len(key).to_bytes(4, "big") + key)
            entry.update(value)
            total = (total + int.from_bytes(entry.digest(), "big")) % (1 << 256)
            count += 1
        result[name] = {"entries": count, "digest": f"{total:064x}"}
    # Not a table: the files whose bytes this worker still keeps locally (storage/spool.py).
    result["spool"] = {"entries": len(spool)}
    return web.json(result)


@guarded_page("/filestream/transfers/")
async def transfers_view(web, request):
    """S3 transfer records of this worker's partitions: ``?state=failed&limit=100&offset=0``; 503 while restoring.

    ``states`` counts every record of these partitions per state, whatever the filter.
    The ``transfers`` command pages through this view: a command cannot open a running worker's RocksDB.
    """
    page = Page.from_query(request.query)
    wanted_state = choice(request.query, "state", [state.value for state in State])
    if not tables_ready():
        return web.json(RECOVERING, status=503)
    states = await census_counts(transfers)
    matching = (
        record for _, record in transfers.items() if not wanted_state or record.transfer.state.value == wanted_state
    )
    rows, total = await page.collect_counted(matching, states[wanted_state] if wanted_state else sum(states.values()))
    return web.json(page.body("transfers", [record.summary() for record in rows], total, states=dict(states)))


@guarded_page("/filestream/processors/")
async def processors_view(web, request):
    """Processor outcomes of this worker's partitions; 503 while restoring.

    ``?processor=NAME&status=failed&limit=100&offset=0``; ``registered`` lists the processors
    and reproducers this worker runs.
    """
    page = Page.from_query(request.query)
    # Any name: results of a processor no longer registered stay in the table.
    wanted_processor = request.query.get("processor")
    wanted_status = choice(request.query, "status", [status.value for status in ResultStatus])
    if not tables_ready():
        return web.json(RECOVERING, status=503)
    matching = (
        result
        for result in iter_results()
        if (not wanted_processor or result.processor == wanted_processor)
        and (not wanted_status or result.status.value == wanted_status)
    )
    rows, total = await page.collect(matching)
    registered = [{"name": r.name, "kind": r.kind.value, "match": r.match.pattern, "topic": r.topic} for r in registry]
    return web.json(page.body("results", [result.summary() for result in rows], total, registered=registered))
