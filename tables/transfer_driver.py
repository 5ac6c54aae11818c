"""Driving a file's S3 transfer record through its states, as plain code.

:func:`~tables.transfer_record.next_step` says what comes next; :class:`TransferDriver`
carries it out with the S3 calls and the record store it is given, records every move, and
releases the generation's spooled bytes once the transfer settles.  It is the same for a
transfer started by a completed file, resumed after a restart, or retried after a failure.

Ordering: one driver at a time works on a file (a per-file lock), and every write first
checks that the record still describes the generation the driver started with, so a newer
generation recorded meanwhile (by the reassembly, which never waits for S3) is never
overwritten by an older one's progress.  Retries are spent only on answers from S3: while
the endpoint does not answer at all, a transfer waits without using one up, and an
interrupted upload (a worker stopped during it) resumes without using one either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from errors import TransferError
from tables.transfer_bookkeeping import FileLocks
from tables.transfer_record import Step, TransferRecord, next_step
from tables.transfer_state import State, TransferState, no_jitter

log = logging.getLogger(__name__)


class TransferFailed(TransferError):
    """S3 answered, and the answer means this attempt failed; ``str()`` says why."""


class S3Unanswered(TransferError):
    """S3 gave no answer at all (refused, timed out, reset): the attempt does not count."""


@dataclass(frozen=True)
class Uploaded:
    checksum: str  # CRC32 of the bytes sent, base64
    size: int
    parts: int
    # S3's answer to the upload named this CRC32 as the stored object's: verified, no HeadObject needed.
    confirmed: bool = False


class S3Calls(Protocol):
    """What the driver asks of S3; the agent's adapter turns boto3's answers into these outcomes."""

    async def reachable(self) -> bool: ...

    async def upload(self, file_key: bytes, record: TransferRecord, spooled: Path) -> Uploaded:
        """Raise TransferFailed or S3Unanswered."""
        ...

    async def verify(self, file_key: bytes, record: TransferRecord) -> str | None:
        """None if S3 holds the file as recorded, else why not; raise S3Unanswered."""
        ...


class Records(Protocol):
    def load(self, key: bytes) -> TransferRecord | None: ...

    def save(self, key: bytes, record: TransferRecord) -> None: ...


@dataclass(frozen=True)
class DriverConfig:
    backoff_base: float
    backoff_cap: float
    concurrency: int  # files in flight at once
    # While S3 does not answer, an upload is tried again after this long (without using a retry).
    unreachable_pause: float = 5.0


class TransferDriver:
    def __init__(
        self,
        records: Records,
        s3: S3Calls,
        config: DriverConfig,
        *,
        bytes_ready: Callable[[bytes, TransferRecord], bool],
        spooled_path: Callable[[bytes, TransferRecord], Path],
        release: Callable[[bytes, TransferRecord], None],
        on_transition: Callable[[bytes, TransferRecord], None] = lambda key, record: None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[float], float] = no_jitter,
    ) -> None:
        self.records = records
        self.s3 = s3
        self.config = config
        self.bytes_ready = bytes_ready
        self.spooled_path = spooled_path
        self.release = release
        self.on_transition = on_transition
        self.clock = clock
        self.jitter = jitter
        self.locks = FileLocks()
        self._slots = asyncio.Semaphore(config.concurrency)

    def busy(self, key: bytes) -> bool:
        return self.locks.locked(key)

    def next_step(self, key: bytes, record: TransferRecord) -> Step:
        return next_step(record.transfer, self.clock(), self.bytes_ready(key, record))

    async def drive(self, key: bytes) -> None:
        """Carry the file's record forward until it waits (backoff, S3 away, bytes not here) or settles."""
        if self.locks.locked(key):
            return  # in flight here: its driver carries it on
        async with self.locks.hold(key), self._slots:
            record = self.records.load(key)
            while record is not None:
                step = self.next_step(key, record)
                if step in (Step.WAIT, Step.AWAIT_BYTES):
                    return
                if step is Step.SETTLED:
                    self.release(key, record)
                    return
                if step in (Step.UPLOAD, Step.VERIFY) and not await self.s3.reachable():
                    return  # an outage must not use up the retries: the reconciliation asks again
                record = await self._perform(step, key, record)

    async def _perform(self, step: Step, key: bytes, record: TransferRecord) -> TransferRecord | None:
        """The record after ``step``, saved; None when a newer generation took its place or S3 did not answer."""
        transfer = record.transfer
        now = self.clock()
        if step in _TO_PENDING:
            pending = _TO_PENDING[step](transfer, now)
            # Pending is only written when the upload cannot follow at once: a file's record is
            # written three times on the way to valid (ready, transferring, valid), not five.
            if self.next_step(key, record.moved(pending)) is Step.UPLOAD and await self.s3.reachable():
                if pending.message:
                    log.info("s3: %s generation %s: %s", pending.file_id, pending.generation, pending.message)
                return await self._upload(key, record, pending)
            return self._move(key, record, pending)
        if step is Step.UPLOAD:
            return await self._upload(key, record, transfer)
        if step is Step.VERIFY:
            return await self._verify(key, record, transfer)
        raise AssertionError(f"no action for step {step}")

    async def _upload(self, key: bytes, record: TransferRecord, pending: TransferState) -> TransferRecord | None:
        """Pending → transferring (written, so a long upload shows) → uploaded and verified, or failed.

        S3's answer to the upload verifies it when it names the object's CRC32; else a verification follows."""
        transferring = self._move(key, record, pending.start_transfer(now=self.clock()))
        if transferring is None:
            return None
        sent = await self._send(key, transferring)
        if sent.state is State.DONE and await self.s3.reachable():
            if self._superseded(key, transferring):
                return None  # no verification for a generation that is not the file's any more
            return await self._verify(key, transferring, sent)
        return self._move(key, transferring, sent)

    async def _send(self, key: bytes, record: TransferRecord) -> TransferState:
        """The state after the upload: valid when S3's answer confirmed the object's checksum, else done or failed."""
        transfer = record.transfer
        if record.payload_epoch is None:
            return self._fail(transfer, "no bytes were kept for S3 when the file completed (S3 was off there)")
        try:
            uploaded = await self.s3.upload(key, record, self.spooled_path(key, record))
        except S3Unanswered as exc:
            resume_at = self.clock() + self.config.unreachable_pause
            return transfer.interrupt(f"S3 did not answer: {exc}", now=self.clock(), resume_at=resume_at)
        except TransferFailed as exc:
            return self._fail(transfer, str(exc))
        except Exception as exc:  # counted like an answer from S3, so a transfer that always breaks gives up
            log.exception("s3: unexpected error uploading %s", transfer.file_id)
            return self._fail(transfer, f"unexpected {type(exc).__name__}: {exc}")
        if record.expected_checksum is not None and uploaded.checksum != record.expected_checksum:
            reason = f"the bytes sent have CRC32 {uploaded.checksum}, the verified file {record.expected_checksum}"
            return self._fail(transfer, reason)
        done = transfer.transferred(checksum=uploaded.checksum, now=self.clock())
        return done.validated(now=self.clock()) if uploaded.confirmed else done

    async def _verify(self, key: bytes, record: TransferRecord, done: TransferState) -> TransferRecord | None:
        """Done → valid or invalid.  ``done`` is not written yet when it is not ``record``'s own state:
        it is written only if S3 gives no answer, so that the next attempt verifies instead of uploading."""
        try:
            problem = await self.s3.verify(key, record.moved(done))
        except BaseException as exc:
            if done is not record.transfer:
                self._move(key, record, done)
            if isinstance(exc, S3Unanswered):
                log.warning("s3: cannot verify %s yet: %s", done.file_id, exc)
                return None
            raise
        now = self.clock()
        checked = done.validated(now=now) if problem is None else done.invalidated(problem, now=now)
        return self._move(key, record, checked)

    def _fail(self, transfer: TransferState, reason: str) -> TransferState:
        return transfer.fail(
            reason,
            now=self.clock(),
            backoff_base=self.config.backoff_base,
            backoff_cap=self.config.backoff_cap,
            jitter=self.jitter,
        )

    def _move(self, key: bytes, record: TransferRecord, transfer: TransferState) -> TransferRecord | None:
        """Save the record with ``transfer``, unless the stored record now describes another generation."""
        if self._superseded(key, record):
            return None
        moved = record.moved(transfer)
        self.records.save(key, moved)
        self.on_transition(key, moved)
        return moved

    def _superseded(self, key: bytes, record: TransferRecord) -> bool:
        current = self.records.load(key)
        if current is not None and _same_generation(current, record):
            return False
        transfer = record.transfer
        log.info("s3: %s generation %s was superseded during its transfer", transfer.file_id, transfer.generation)
        return True


# The steps that make a record pending again, after which the upload follows when it can.
_TO_PENDING: dict[Step, Callable[[TransferState, float], TransferState]] = {
    Step.QUEUE: lambda transfer, now: transfer.queue(now=now),
    Step.RETRY: lambda transfer, now: transfer.retry(now=now),
    Step.FRESH_UPLOAD: lambda transfer, now: transfer.retry_invalid(now=now),
    Step.INTERRUPTED: lambda transfer, now: transfer.interrupt(
        "resumed: the worker stopped during the upload", now=now
    ),
}


def _same_generation(a: TransferRecord, b: TransferRecord) -> bool:
    return (a.transfer.generation, a.transfer.file_hash, a.payload_epoch) == (
        b.transfer.generation,
        b.transfer.file_hash,
        b.payload_epoch,
    )


def outcome_level(transfer: TransferState) -> int:
    """Log outcomes loudly, the steps in between (moments apart) quietly."""
    if transfer.state is State.VALID:
        return logging.INFO
    if transfer.state in (State.FAILED, State.INVALID) or transfer.message:
        return logging.ERROR if transfer.terminal else logging.WARNING
    return logging.DEBUG
