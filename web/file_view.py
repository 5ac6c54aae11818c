"""``/filestream/file/<source>/<path>``: everything the pipeline knows about one file, from any worker."""

from __future__ import annotations

import time

from app import app
from models.identity import FileId, InvalidIdentity
from processors.api import registry
from processors.results import result_key
from tables.files import assemblies, assemblies_table
from tables.processor_results import load_result
from tables.transfers import transfers
from web.access import guarded_page
from web.routing import answer_from_owner
from web.tables import assembly_summary


@guarded_page("/filestream/file/{source}/{path:.+}")
async def file_view(web, request, source: str, path: str):
    """Assembly state, S3 transfer record and processor outcomes of one file, from the worker owning it.

    Percent-encode the path's characters that URLs reserve (``%``, ``?``, ``#``, spaces);
    its slashes may stay.  404 when no table knows the file, 503 while its owner cannot answer.
    """
    try:
        file_id = FileId(source, path)
    except InvalidIdentity as exc:
        return web.json({"error": str(exc)}, status=400)
    return await answer_from_owner(web, request, assemblies_table, file_id.key, lambda: _describe(web, file_id))


async def _describe(web, file_id: FileId):
    key = file_id.key
    state = assemblies.load(key)
    transfer = transfers.load(key)
    results = [result for r in registry if (result := load_result(result_key(r.name, key))) is not None]
    body = {
        "file": str(file_id),
        "worker": str(app.conf.canonical_url),
        "assembly": assembly_summary(key, state, time.time()) if state is not None else None,
        "transfer": transfer.summary() if transfer is not None else None,
        "processors": [result.summary() for result in results],
    }
    if state is None and transfer is None and not results:
        return web.json({**body, "error": "no table of the worker owning its partition knows this file"}, status=404)
    return web.json(body)
