"""Reassembly agent: chunk records in, whole verified files and completed/failed events out.

All state lives in the changelog-backed tables of :mod:`tables.files`; processing is
at-least-once, so every step here is idempotent: a chunk replayed after a crash
finds its work already done (or redoes it identically), and a file whose chunks
are all present completes whenever one of them is seen again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import telemetry
from app import app, chunks_topic, completed_topic, settings
from models.chunk import ChunkDecodeError, FileChunk
from models.chunk_codecs import decode_any_chunk
from models.events import COMPLETED, FAILED, FILE_HASH_NAME, FileEvent
from models.identity import FileId
from storage.local import AtomicFile, UnsafeDestination, safe_destination
from tables.assembly import Action, AssemblyState, Status, decide
from tables.files import delete_payloads, iter_payloads, load_state, payload_key, payloads, save_state
from tables.payload_holds import payload_holders

log = logging.getLogger(__name__)


@app.agent(chunks_topic, name="reassembly")
async def reassemble(stream):
    async for event in stream.events():
        await handle_chunk(event.key, event.value, event.message.partition)


async def handle_chunk(key: bytes | None, value: bytes, partition: int) -> None:
    telemetry.chunk_received()
    try:
        chunk = decode_any_chunk(value, settings.chunk_codec, settings.openmsistream_source)
    except ChunkDecodeError as exc:
        log.warning("rejected a message on partition %d (key %r): %s", partition, key and key[:200], exc)
        telemetry.chunk_rejected("malformed")
        return
    file_id = chunk.file_id
    if key != file_id.key:
        log.warning("rejected chunk %d of %s: message key %r does not match", chunk.index, file_id, key)
        telemetry.chunk_rejected("key_mismatch")
        return
    state = load_state(key)
    if not chunk.payload_is_intact():
        log.warning("rejected chunk %d of %s: payload does not match its hash", chunk.index, file_id)
        telemetry.chunk_rejected("bad_hash")
        if state is not None:
            state.rejected_chunks += 1
            save_state(key, state)
        return

    now = time.time()
    decision = decide(state, chunk)
    if decision.action is Action.START:
        state = AssemblyState.begin(chunk, partition, now)
        telemetry.file_started()
        log.info(
            "receiving %s generation %s: %s bytes in %d chunks",
            file_id,
            chunk.generation,
            chunk.file_size,
            chunk.chunk_count,
        )
    elif decision.action is Action.RESET:
        assert state is not None
        log.info("%s: %s; discarding the partial assembly", file_id, decision.reason)
        delete_payloads(key, state.epoch, state.received_indices())
        state = AssemblyState.begin(chunk, partition, now, epoch=state.epoch + 1)
        telemetry.file_started()
    elif decision.action in (Action.STALE, Action.CORRUPT):
        assert state is not None
        log.warning("skipped chunk %d of %s: %s", chunk.index, file_id, decision.reason)
        telemetry.chunk_rejected(decision.action.value)
        if decision.action is Action.CORRUPT:
            state.rejected_chunks += 1
            save_state(key, state)
        return
    assert state is not None

    if decision.action is not Action.DUPLICATE or _payload_lost(key, state, chunk):
        payloads[payload_key(key, state.epoch, chunk.index)] = chunk.payload
        telemetry.chunk_stored(len(chunk.payload))
        state.mark(chunk.index, now)
        save_state(key, state)
    if state.complete:
        await complete_file(file_id, state)


def _payload_lost(key: bytes, state: AssemblyState, chunk: FileChunk) -> bool:
    """A crash can persist the state's "received" bit without the payload; a replayed chunk heals that."""
    return state.status is Status.ASSEMBLING and payload_key(key, state.epoch, chunk.index) not in payloads


async def complete_file(file_id: FileId, state: AssemblyState) -> None:
    key = file_id.key
    started = time.monotonic()
    result = await _verify_and_write(file_id, state)
    if result.missing:
        for index in result.missing:
            state.unmark(index)
        save_state(key, state)
        log.error("%s: payloads of chunks %s are missing; waiting for them to be re-sent", file_id, result.missing[:20])
        return
    if result.failure:
        await publish_failure(file_id, state, result.failure)
        return
    first_chunk_at = state.first_chunk_at
    await _finish(file_id, state, COMPLETED, None, result)
    elapsed = time.time() - first_chunk_at
    telemetry.file_completed(result.size, elapsed)
    log.info(
        "completed %s generation %s: %d bytes, %.2fs from first chunk (%.1f MB/s), verified and written in %.2fs",
        file_id,
        state.generation,
        result.size,
        elapsed,
        result.size / max(elapsed, 1e-6) / 1e6,
        time.monotonic() - started,
    )


async def publish_failure(file_id: FileId, state: AssemblyState, reason: str) -> None:
    telemetry.file_failed()
    log.error("failed %s generation %s: %s", file_id, state.generation, reason)
    await _finish(file_id, state, FAILED, reason, None)


async def _finish(
    file_id: FileId, state: AssemblyState, status: str, reason: str | None, written: _Reassembled | None
) -> None:
    """Publish the outcome, wait for the broker's ack, then release the payloads and record it.

    A completed generation's payloads stay while downstream consumers read them
    (tables/payload_holds.py); the event names their epoch, and the last holder deletes them.
    """
    now = time.time()
    retained = status == COMPLETED and bool(payload_holders(settings))
    event = FileEvent(
        status=status,
        source=file_id.source,
        path=file_id.path,
        generation=state.generation,
        file_hash=written.sha256 if written else state.file_hash,
        file_size=written.size if written else state.file_size,
        chunk_count=state.chunk_count,
        first_chunk_at=state.first_chunk_at,
        finished_at=now,
        reason=reason,
        output_path=str(written.path) if written and written.path else None,
        payload_epoch=state.epoch if retained else None,
    )
    key = file_id.key
    await (await completed_topic.send(key=key, value=event.dumps(), partition=state.partition))
    if not retained:
        delete_payloads(key, state.epoch, state.received_indices())
    state.finish(Status.COMPLETED if status == COMPLETED else Status.FAILED, now, reason)
    save_state(key, state)


@dataclass
class _Reassembled:
    path: Path | None = None  # where the file was written (None when output is off)
    size: int = 0
    sha256: str = ""
    failure: str | None = None
    missing: list[int] = field(default_factory=list)


async def _verify_and_write(file_id: FileId, state: AssemblyState) -> _Reassembled:
    """Stream the payloads through the file hash, and into the output file if enabled.

    Nothing half-written is ever left at the destination: the output goes through a
    temp file that is renamed into place only after the hash matched.
    """
    try:
        dest = safe_destination(settings.output_dir, file_id) if settings.write_output else None
    except UnsafeDestination as exc:
        return _Reassembled(failure=str(exc))
    # The records' own hash proves the file; completed events carry its SHA-256 whatever that was.
    hashers = {name: hashlib.new(name) for name in {state.hash_name, FILE_HASH_NAME}}
    size = 0
    missing: list[int] = []
    sink = AtomicFile(dest) if dest is not None else None
    try:
        for index, payload in iter_payloads(file_id.key, state.epoch, state.chunk_count):
            if payload is None:
                missing.append(index)
                continue
            for hasher in hashers.values():
                hasher.update(payload)
            size += len(payload)
            if sink is not None:
                sink.write(payload)
            # Heartbeats and other partitions' events run on this loop too.
            await asyncio.sleep(0)
        if missing:
            return _Reassembled(missing=missing)
        if state.file_size is not None and size != state.file_size:
            return _Reassembled(failure=f"reassembled {size} bytes, expected {state.file_size}")
        file_hash = hashers[state.hash_name].hexdigest()
        if file_hash != state.file_hash:
            return _Reassembled(failure=f"file hash mismatch: got {file_hash}, expected {state.file_hash}")
        if sink is not None:
            await asyncio.get_running_loop().run_in_executor(None, sink.commit)
        return _Reassembled(path=dest, size=size, sha256=hashers[FILE_HASH_NAME].hexdigest())
    finally:
        if sink is not None and not sink.committed:
            sink.discard()
