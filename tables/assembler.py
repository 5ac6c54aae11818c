"""Chunk records in, verified files out: the reassembly agent's work as plain code.

The :class:`Assembler` decodes a record, checks it, applies the generation policy
(tables/assembly.py), puts the payload into the spool (storage/spool.py) and, when a
generation is complete, verifies it, writes it to the output directory, creates its S3
transfer record and announces it.  It takes its tables and the broker as arguments, so it
runs the same under the agent and in a unit test.

Every step is idempotent: processing is at-least-once, and the worker replays a file's
chunks after a restart or a takeover (its spool is not trusted across processes), so a
replayed chunk finds its work done, or redoes it identically.  The order of the writes on
completion makes a crash at any point safe: the transfer record first, then the event,
then the state that says "completed" (a replay of a file whose state still says
"assembling" completes it again; the event may repeat, the record is not recreated).

A file's state is written when it starts, resets, completes or fails; the chunks in between
are marked in it at most every :data:`PROGRESS_WRITE_INTERVAL` seconds, and within two of
the last chunk (:meth:`Assembler.write_due_progress`).  The marks in the
table only show progress: the spool, which is this process's own, is what completes a file,
and after a restart or a takeover every chunk of an unsettled file comes again.  Until it
is written, the latest state lives here (:meth:`Assembler.state`).

What the agent learns from each record (:class:`Verdict`): whether the file is settled
(nothing more will be done with its chunks, so the record's offset may be committed), and
the reason a record was rejected, for the dead-letter topic.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import telemetry
from models.bounds import ChunkLimits
from models.chunk import ChunkDecodeError, FileChunk
from models.chunk_codecs import decode_any_chunk
from models.events import COMPLETED, FAILED, FILE_HASH_NAME, FileEvent
from models.identity import FileId
from storage.local import UnsafeDestination, publish_file, safe_destination
from storage.spool import Spool, SpoolKey
from tables.assembly import Action, AssemblyState, Status, chunk_length_of, decide
from tables.transfer_record import TransferRecord
from tables.transfer_state import TransferAction, TransferState
from tables.transfer_state import decide as decide_transfer

log = logging.getLogger(__name__)

T = TypeVar("T")

# Measured with bench.drain_bench: one write per 1 MiB chunk was a changelog record per chunk;
# a 2 GiB file now writes about one a second of its arrival.
PROGRESS_WRITE_INTERVAL = 1.0


class StateStore(Protocol):
    def load(self, key: bytes) -> AssemblyState | None: ...

    def save(self, key: bytes, state: AssemblyState) -> None: ...


class TransferStore(Protocol):
    def load(self, key: bytes) -> TransferRecord | None: ...

    def save(self, key: bytes, record: TransferRecord) -> None: ...


Publish = Callable[[bytes, FileEvent, int], Awaitable[None]]


class RunBlocking(Protocol):
    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


@dataclass(frozen=True)
class AssemblyConfig:
    codec: str
    openmsistream_source: str
    limits: ChunkLimits
    output_dir: Path
    write_output: bool
    s3_enabled: bool
    s3_max_retries: int


@dataclass(frozen=True)
class Verdict:
    """What the agent must know about one record once it is handled.

    ``settled``: nothing more will be done with this file's chunks, so its offsets may be
    committed; ``rejected``: why the record was refused (for the dead-letter topic);
    ``transfer_ready``: this record completed the spooled bytes an S3 transfer waits for.
    """

    settled: bool
    rejected: str | None = None
    file_key: bytes | None = None
    transfer_ready: bool = False


@dataclass(frozen=True)
class _Verified:
    size: int
    sha256: str
    checksum: str  # CRC32, base64


class Assembler:
    def __init__(
        self,
        config: AssemblyConfig,
        states: StateStore,
        transfers: TransferStore,
        spool: Spool,
        publish: Publish,
        run_blocking: RunBlocking,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.states = states
        self.transfers = transfers
        self.spool = spool
        self.publish = publish
        self.run_blocking = run_blocking
        self.clock = clock
        # Assembling files: (partition, when their state was last written), and the states whose
        # latest marks are not written yet.
        self._written_at: dict[bytes, tuple[int, float]] = {}
        self._unwritten: dict[bytes, AssemblyState] = {}

    def state(self, key: bytes) -> AssemblyState | None:
        """The file's assembly state as it stands, written or not."""
        unwritten = self._unwritten.get(key)
        return unwritten if unwritten is not None else self.states.load(key)

    def _write(self, key: bytes, state: AssemblyState) -> None:
        self.states.save(key, state)
        self._unwritten.pop(key, None)
        if state.status is Status.ASSEMBLING:
            self._written_at[key] = (state.partition, self.clock())
        else:
            self._written_at.pop(key, None)

    def _write_progress(self, key: bytes, state: AssemblyState) -> None:
        """A chunk was marked: write the state unless it was written less than the interval ago.

        A state first met in the table (a restart, a takeover) counts as written now, so the
        chunks replayed into the spool write nothing until the interval has passed.
        """
        now = self.clock()
        written_at = self._written_at.setdefault(key, (state.partition, now))[1]
        if now - written_at < PROGRESS_WRITE_INTERVAL:
            self._unwritten[key] = state
        else:
            self._write(key, state)

    def partitions_with_unwritten_progress(self) -> set[int]:
        return {state.partition for state in self._unwritten.values()}

    def write_due_progress(self, partition: int) -> int:
        """Write the partition's unwritten marks last written at least the interval ago; how many.

        Called on a tick of the partition (agents/progress.py), so the marks of a file whose
        chunks stopped coming reach the table too.
        """
        now = self.clock()
        due = [
            (key, state)
            for key, state in self._unwritten.items()
            if state.partition == partition and now - self._written_at[key][1] >= PROGRESS_WRITE_INTERVAL
        ]
        for key, state in due:
            self._write(key, state)
        return len(due)

    def forget_partition(self, partition: int) -> None:
        """The partition went to another worker: its spool and unwritten states are of no use here any more."""
        self.spool.forget_partition(partition)
        for key in [key for key, (owner, _) in self._written_at.items() if owner == partition]:
            del self._written_at[key]
            self._unwritten.pop(key, None)

    # -- one record ------------------------------------------------------------------------

    async def handle(self, key: bytes | None, value: bytes | None, partition: int) -> Verdict:
        telemetry.chunk_received()
        try:
            chunk = decode_any_chunk(
                value or b"", self.config.codec, self.config.openmsistream_source, self.config.limits
            )
        except ChunkDecodeError as exc:
            return self._reject(None, "malformed", str(exc), f"a message on partition {partition} (key {key!r:.200})")
        file_id = chunk.file_id
        if key != file_id.key:
            return self._reject(None, "key_mismatch", f"message key {key!r:.200} is not the file's", f"{file_id}")
        state = self.state(file_id.key)
        if not chunk.payload_is_intact():
            if state is not None and state.status is Status.ASSEMBLING:
                state.rejected_chunks += 1
                self._write(file_id.key, state)
            return self._reject(
                state, "bad_hash", "payload does not match its hash", f"chunk {chunk.index} of {file_id}"
            )
        decision = decide(state, chunk)
        now = self.clock()
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
            assert state is not None  # noqa: S101  (decide only resets an existing state)
            log.info("%s: %s; discarding the partial assembly", file_id, decision.reason)
            self._release_spool(file_id.key, state)
            state = AssemblyState.begin(chunk, partition, now, epoch=state.epoch + 1)
            telemetry.file_started()
        elif decision.action in (Action.STALE, Action.CORRUPT):
            assert state is not None  # noqa: S101  (decide refuses only against an existing state)
            respooled = self._respool_for_transfer(file_id.key, chunk, partition)
            if respooled is not None:
                return Verdict(self._settled(file_id.key, state), file_key=file_id.key, transfer_ready=respooled)
            if decision.action is Action.CORRUPT and state.status is Status.ASSEMBLING:
                state.rejected_chunks += 1
                self._write(file_id.key, state)
            reason: telemetry.RejectionReason = "stale" if decision.action is Action.STALE else "corrupt"
            verdict = self._reject(state, reason, decision.reason, f"chunk {chunk.index} of {file_id}")
            return Verdict(self._settled(file_id.key, state), verdict.rejected, file_id.key)
        assert state is not None  # noqa: S101  (started, reset or known)

        if state.status is not Status.ASSEMBLING:
            # A chunk of a finished generation: its bytes may still be needed for S3 after a takeover.
            respooled = self._respool_for_transfer(file_id.key, chunk, partition)
            return Verdict(self._settled(file_id.key, state), file_key=file_id.key, transfer_ready=bool(respooled))

        spool_key = SpoolKey(partition, file_id.key, state.epoch)
        if not self.spool.holds(spool_key, chunk.index):
            # On the event loop: a page-cache copy of one chunk costs less than handing it to a thread.
            self.spool.write(spool_key, chunk.index, chunk.offset, chunk.payload)
        marked = decision.action is not Action.DUPLICATE
        if marked:
            telemetry.chunk_stored(len(chunk.payload))
            state.mark(chunk.index, now, chunk_length_of(chunk))
        if state.complete and self.spool.complete(spool_key, state.chunk_count):
            await self._complete_marked(file_id, state)
        elif decision.action in (Action.START, Action.RESET):
            self._write(file_id.key, state)
        elif marked:
            self._write_progress(file_id.key, state)
        return Verdict(self._settled(file_id.key, state), file_key=file_id.key)

    # -- completion ------------------------------------------------------------------------

    async def _complete_marked(self, file_id: FileId, state: AssemblyState) -> None:
        """Complete a generation whose last chunk was just marked: the finished state is written
        once, with that mark in it (a single-chunk file's state is written once in all).  Should
        the completion break, the mark is written as it would have been (a store whose partition
        was revoked refuses that too), and the error goes on."""
        try:
            await self.complete(file_id, state)
        except Exception:
            if state.status is Status.ASSEMBLING:
                self._write(file_id.key, state)
            raise

    async def complete(self, file_id: FileId, state: AssemblyState) -> None:
        """Verify the spooled generation, write it out, create its transfer record, announce it, record it."""
        started = time.monotonic()
        spool_key = SpoolKey(state.partition, file_id.key, state.epoch)
        # One hand-over to a thread for both: each costs the event loop about 0.3 ms (bench.drain_bench --profile).
        verified, failure, output_path, output_failure = await self.run_blocking(
            lambda: self._verify_and_write(file_id, spool_key, state)
        )
        if verified is None:
            self.spool.discard(spool_key)
            await self.fail(file_id, state, failure or "verification failed")
            return
        if self.config.s3_enabled:
            self._record_transfer(file_id, state, verified)
        status = FAILED if output_failure else COMPLETED
        await self._announce(file_id, state, status, output_failure, verified, output_path)
        state.finish(Status.FAILED if output_failure else Status.COMPLETED, self.clock(), output_failure)
        self._write(file_id.key, state)
        if not self._transfer_needs(file_id.key, state.epoch):
            self.spool.discard(spool_key)
        if output_failure:
            telemetry.file_failed()
            log.error(
                "failed %s generation %s: %s (its S3 transfer goes ahead)", file_id, state.generation, output_failure
            )
            return
        elapsed = self.clock() - state.first_chunk_at
        telemetry.file_completed(verified.size, elapsed)
        log.info(
            "completed %s generation %s: %d bytes, %.2fs from first chunk (%.1f MB/s), verified and written in %.2fs",
            file_id,
            state.generation,
            verified.size,
            elapsed,
            verified.size / max(elapsed, 1e-6) / 1e6,
            time.monotonic() - started,
        )

    async def fail(self, file_id: FileId, state: AssemblyState, reason: str) -> None:
        """The generation failed for good: announce it with the reason and release its spool."""
        telemetry.file_failed()
        log.error("failed %s generation %s: %s", file_id, state.generation, reason)
        await self._announce(file_id, state, FAILED, reason, None, None)
        self._release_spool(file_id.key, state)
        state.finish(Status.FAILED, self.clock(), reason)
        self._write(file_id.key, state)

    def _verify_and_write(
        self, file_id: FileId, spool_key: SpoolKey, state: AssemblyState
    ) -> tuple[_Verified | None, str | None, Path | None, str | None]:
        """In a thread: the verified file (or why it failed), and its output path (or why it could not be written)."""
        verified, failure = self._verify(spool_key, state)
        if verified is None:
            return None, failure, None, None
        return verified, None, *self._write_output(file_id, spool_key)

    def _verify(self, spool_key: SpoolKey, state: AssemblyState) -> tuple[_Verified | None, str | None]:
        names = {state.hash_name, FILE_HASH_NAME}
        digests = self.spool.digests(spool_key, names)
        if state.file_size is not None and digests.size != state.file_size:
            return None, f"reassembled {digests.size} bytes, expected {state.file_size}"
        if digests.hashes[state.hash_name] != state.file_hash:
            return None, f"file hash mismatch: got {digests.hashes[state.hash_name]}, expected {state.file_hash}"
        checksum = base64.b64encode(digests.crc32.to_bytes(4, "big")).decode("ascii")
        return _Verified(digests.size, digests.hashes[FILE_HASH_NAME], checksum), None

    def _write_output(self, file_id: FileId, spool_key: SpoolKey) -> tuple[Path | None, str | None]:
        """The output file's path, or why it could not be written (the bytes are fine: S3 still gets them)."""
        if not self.config.write_output:
            return None, None
        try:
            dest = safe_destination(self.config.output_dir, file_id)
            publish_file(self.spool.path(spool_key), dest)
        except UnsafeDestination as exc:
            return None, f"output: {exc}"
        except OSError as exc:
            return None, f"output: cannot write {file_id} into {self.config.output_dir}: {_os_error(exc)}"
        return dest, None

    def _record_transfer(self, file_id: FileId, state: AssemblyState, verified: _Verified) -> None:
        existing = self.transfers.load(file_id.key)
        decision = decide_transfer(
            existing.transfer if existing else None,
            file_id=str(file_id),
            generation=state.generation,
            file_hash=verified.sha256,
        )
        if decision.action not in (TransferAction.START, TransferAction.SUPERSEDE):
            return  # this generation has its record already (a replay), or a newer one exists
        if existing is not None:
            log.info("s3: %s: %s", file_id, decision.reason)
            if existing.payload_epoch is not None and existing.payload_epoch != state.epoch:
                self.spool.discard(SpoolKey(state.partition, file_id.key, existing.payload_epoch))
        transfer = TransferState.new(
            str(file_id),
            generation=state.generation,
            file_hash=verified.sha256,
            size=verified.size,
            max_retries=self.config.s3_max_retries,
            now=self.clock(),
        )
        record = TransferRecord(
            transfer=transfer,
            partition=state.partition,
            payload_epoch=state.epoch,
            chunk_count=state.chunk_count,
            expected_checksum=verified.checksum,
            chunk_file_hash=state.file_hash,
        )
        self.transfers.save(file_id.key, record)

    async def _announce(
        self,
        file_id: FileId,
        state: AssemblyState,
        status: str,
        reason: str | None,
        verified: _Verified | None,
        output_path: Path | None,
    ) -> None:
        event = FileEvent(
            status=status,
            source=file_id.source,
            path=file_id.path,
            generation=state.generation,
            file_hash=verified.sha256 if verified else state.file_hash,
            file_size=verified.size if verified else state.file_size,
            chunk_count=state.chunk_count,
            first_chunk_at=state.first_chunk_at,
            finished_at=self.clock(),
            reason=reason,
            output_path=str(output_path) if output_path else None,
            payload_epoch=state.epoch if verified and self._transfer_needs(file_id.key, state.epoch) else None,
        )
        await self.publish(file_id.key, event, state.partition)

    # -- the transfer's bytes after a takeover ----------------------------------------------

    def _respool_for_transfer(self, key: bytes, chunk: FileChunk, partition: int) -> bool | None:
        """Spool a chunk of a finished generation whose S3 transfer still needs it.

        None when no transfer needs it; else whether the transfer's bytes are now all here
        (True only for the chunk that completed them).
        """
        record = self.transfers.load(key)
        if record is None or not record.needs_bytes or not record.describes(chunk.generation, chunk.file_hash):
            return None
        assert record.payload_epoch is not None  # noqa: S101  (needs_bytes)
        spool_key = SpoolKey(partition, key, record.payload_epoch)
        if self.spool.holds(spool_key, chunk.index):
            return False
        self.spool.write(spool_key, chunk.index, chunk.offset, chunk.payload)
        return self.spool.complete(spool_key, record.chunk_count)

    def transfer_bytes_ready(self, key: bytes, record: TransferRecord) -> bool:
        """Whether this process holds every chunk of the generation the record transfers."""
        if record.payload_epoch is None:
            return False
        return self.spool.complete(SpoolKey(record.partition, key, record.payload_epoch), record.chunk_count)

    # -- settlement ------------------------------------------------------------------------

    def _transfer_needs(self, key: bytes, epoch: int) -> bool:
        record = self.transfers.load(key)
        return record is not None and record.needs_bytes and record.payload_epoch == epoch

    def _settled(self, key: bytes, state: AssemblyState | None) -> bool:
        """Nothing more will be done with the file's chunks: not assembling, and no transfer reads them."""
        if state is not None and state.status is Status.ASSEMBLING:
            return False
        record = self.transfers.load(key)
        return record is None or not record.needs_bytes

    def settled(self, key: bytes) -> bool:
        return self._settled(key, self.state(key))

    async def expire(self, key: bytes, state: AssemblyState, now: float) -> None:
        """A partial file that received no chunk for too long (tables.assembly.expired) fails, saying so."""
        idle = now - state.last_chunk_at
        reason = f"expired: {state.received_count} of {state.chunk_count} chunks after {idle:.0f}s without a chunk"
        await self.fail(FileId.from_key(key), state, reason)

    def _release_spool(self, key: bytes, state: AssemblyState) -> None:
        if not self._transfer_needs(key, state.epoch):
            self.spool.discard(SpoolKey(state.partition, key, state.epoch))

    def _reject(
        self, state: AssemblyState | None, reason: telemetry.RejectionReason, detail: str, what: str
    ) -> Verdict:
        telemetry.chunk_rejected(reason)
        log.warning("rejected %s: %s", what, detail)
        return Verdict(settled=state is None or state.status is not Status.ASSEMBLING, rejected=f"{reason}: {detail}")


def _os_error(exc: OSError) -> str:
    """``IsADirectoryError: [Errno 21] Is a directory: '/out/x'`` as ``a directory is in the way (/out/x)``."""
    explained = {
        "IsADirectoryError": "a directory is in the way",
        "NotADirectoryError": "a file is where a directory must be",
        "FileExistsError": "a file is where a directory must be",
        "PermissionError": "permission denied",
    }.get(type(exc).__name__, exc.strerror or type(exc).__name__)
    where = exc.filename or ""
    return f"{explained} ({where})" if where else explained
