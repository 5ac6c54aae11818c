"""JSON views on the worker's web server: table inspection.  State only, never file contents."""

from __future__ import annotations

import hashlib
import time

from app import app
from processors.api import registry
from tables.assembly import AssemblyState
from tables.files import assemblies, payloads
from tables.processor_results import iter_results
from tables.transfers import iter_transfers

MAX_LIMIT = 1000


def _page_bounds(request) -> tuple[int, int]:
    try:
        limit = min(MAX_LIMIT, max(1, int(request.query.get("limit", 100))))
        offset = max(0, int(request.query.get("offset", 0)))
    except ValueError:
        limit, offset = 100, 0
    return limit, offset


def assembly_summary(key: bytes, state: AssemblyState, now: float) -> dict:
    return {
        "file": key.decode("utf-8", "replace"),
        "generation": state.generation,
        "status": state.status.value,
        "chunks_received": state.received_count,
        "chunk_count": state.chunk_count,
        "file_size": state.file_size,
        "rejected_chunks": state.rejected_chunks,
        "partition": state.partition,
        "age_seconds": round(now - state.first_chunk_at, 3),
        "idle_seconds": round(now - state.last_chunk_at, 3),
        "reason": state.reason,
    }


@app.page("/filestream/files/")
async def files_view(web, request):
    """Files of this worker's partitions (RocksDB key order per partition): ``?status=assembling&limit=100&offset=0``."""
    limit, offset = _page_bounds(request)
    wanted_status = request.query.get("status")
    now = time.time()
    rows = []
    matched = 0
    for key, raw in assemblies.items():
        state = AssemblyState.loads(raw)
        if wanted_status and state.status.value != wanted_status:
            continue
        if offset <= matched < offset + limit:
            rows.append(assembly_summary(key, state, now))
        matched += 1
    return web.json({"total": matched, "offset": offset, "limit": limit, "files": rows})


@app.page("/filestream/tables/digest/")
async def tables_digest(web, request):
    """Entry count and an order-independent digest of each table's entries, for comparing replicas.

    The digest is the sum, modulo 2**256, of each entry's SHA-256: streaming, and equal for
    equal contents whatever order partitions are iterated in.
    """
    result = {}
    for name, table in (("assemblies", assemblies), ("payloads", payloads)):
        total = 0
        count = 0
        for key, value in table.items():
            entry = hashlib.sha256(len(key).to_bytes(4, "big") + key)
            entry.update(value)
            total = (total + int.from_bytes(entry.digest(), "big")) % (1 << 256)
            count += 1
        result[name] = {"entries": count, "digest": f"{total:064x}"}
    return web.json(result)


@app.page("/filestream/transfers/")
async def transfers_view(web, request):
    """S3 transfer records of this worker's partitions: ``?state=failed&limit=100&offset=0``; 503 while restoring.

    The ``transfers`` command pages through this view: a command cannot open a running worker's RocksDB.
    """
    if app.in_recovery:
        return web.json({"error": "tables are being restored; ask again shortly"}, status=503)
    limit, offset = _page_bounds(request)
    wanted_state = request.query.get("state")
    rows = []
    matched = 0
    for _, record in iter_transfers():
        if wanted_state and record.transfer.state.value != wanted_state:
            continue
        if offset <= matched < offset + limit:
            rows.append(record.summary())
        matched += 1
    return web.json({"total": matched, "offset": offset, "limit": limit, "transfers": rows})


@app.page("/filestream/processors/")
async def processors_view(web, request):
    """Processor outcomes of this worker's partitions; 503 while restoring.

    ``?processor=NAME&status=failed&limit=100&offset=0``; ``registered`` lists the processors
    and reproducers this worker runs.
    """
    if app.in_recovery:
        return web.json({"error": "tables are being restored; ask again shortly"}, status=503)
    limit, offset = _page_bounds(request)
    wanted_processor = request.query.get("processor")
    wanted_status = request.query.get("status")
    rows = []
    matched = 0
    for result in iter_results():
        if wanted_processor and result.processor != wanted_processor:
            continue
        if wanted_status and result.status.value != wanted_status:
            continue
        if offset <= matched < offset + limit:
            rows.append(result.summary())
        matched += 1
    registered = [
        {"name": r.name, "kind": r.kind.value, "match": r.match.pattern, "topic": r.topic} for r in registry
    ]
    return web.json({"registered": registered, "total": matched, "offset": offset, "limit": limit, "results": rows})
