"""S3 transfer agent: completed files go from the payload table to S3, verified with S3's own checksum.

Each file has one record in the ``transfers`` table (tables/transfers.py) that walks the
states of tables/transfer_state.py: ready → pending → transferring → done → valid, or
failed / invalid with the reason in ``message``.  The bytes are the chunk payloads the
reassembly agent kept for S3 (tables/payload_holds.py), read on the event loop and
handed a few chunks at a time to an upload thread (storage/feed.py); boto3 only ever
runs in the executor threads, so the worker keeps heartbeating and consuming.

Nothing here sleeps through a backoff.  A failed transfer is recorded with the time of
its next attempt, and the agent moves on to other files; a timer looks for due work every
few seconds and sends the file's key to the retry topic, on the file's partition,
because table writes need an event of that partition (as in agents/expiry.py).  While
the S3 endpoint does not answer at all, due retries wait without using up their count,
so an outage of any length loses nothing.  The same timer finds the records a stopped
worker left in pending, transferring or done on the partitions this worker now owns, and
resumes them: an interrupted upload counts as a failed attempt.

Both agents run on one event loop; a per-file lock keeps one of them at a time working on
a file, so a file whose lock is held is in flight here and never mistaken for interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from botocore.client import BaseClient

import telemetry
from agents.transfer_bookkeeping import FileLocks, Probe, UnsettledTransfers
from app import app, completed_topic, file_keyed_topic, settings
from models.events import FileEvent, decode_event
from models.identity import FileId, InvalidIdentity
from storage.feed import feed_thread
from storage.s3 import (
    ObjectKeyTooLong,
    S3Error,
    S3Unreachable,
    UploadResult,
    UploadSizeMismatch,
    abort_orphaned_multipart_uploads,
    ensure_bucket,
    head_generation,
    make_s3_client,
    object_key,
    object_metadata,
    translated_errors,
    upload_stream,
    verify_object,
)
from tables.files import delete_payloads, iter_payloads
from tables.transfer_record import Step, TransferRecord, next_step
from tables.transfer_state import State, TransferAction, TransferDecision, TransferState, decide
from tables.transfers import iter_transfers, load_transfer, save_transfer

log = logging.getLogger(__name__)

T = TypeVar("T")

# Often enough that a retry starts soon after its backoff ends.
RETRY_SCAN_INTERVAL = min(5.0, max(0.5, settings.s3_retry_backoff / 2))
# A retry request not handled within this time (its partition moved, or it was lost) is sent again.
RETRY_REQUEST_TTL = 60.0

retry_topic = file_keyed_topic(f"{settings.chunks_topic}-s3-retries")

_executor = ThreadPoolExecutor(settings.s3_threads, thread_name_prefix="s3")
_locks = FileLocks()
_unsettled = UnsettledTransfers(iter_transfers, load_transfer)
_retry_requested_at: dict[bytes, float] = {}


class PayloadsUnavailable(Exception):
    """The chunk payloads of the generation are not (or no longer) in the table."""


class NewerObjectInS3(Exception):
    """The object in S3 carries a newer generation, which an older one must never replace."""


TRANSFER_ERRORS = (S3Error, PayloadsUnavailable, NewerObjectInS3, UploadSizeMismatch, ObjectKeyTooLong, InvalidIdentity)


@functools.cache
def s3_client() -> BaseClient:
    return make_s3_client(settings.s3_threads)


async def in_thread(call: Callable[..., T], *args, **kwargs) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, functools.partial(call, *args, **kwargs))


def _s3_answers(client: BaseClient) -> bool:
    """Executor thread: whether the endpoint answers at all; an error answer counts."""
    try:
        with translated_errors(settings.s3_bucket):
            client.head_bucket(Bucket=settings.s3_bucket)
    except S3Unreachable:
        return False
    except S3Error:
        pass  # an error is an answer too
    return True


def _report_reachability(reachable: bool) -> None:
    if reachable:
        log.info("s3: the endpoint answers; due retries go ahead")
    else:
        log.warning("s3: the endpoint is unreachable; retries wait for it without using up their count")


s3_reachable = Probe(
    lambda: in_thread(_s3_answers, s3_client()), max_age=RETRY_SCAN_INTERVAL, on_change=_report_reachability
)


@app.task
async def prepare_bucket() -> None:
    """Create the bucket if needed and abort the multipart uploads a killed worker left behind.

    Uploads other workers started before this one are aborted too; those transfers then
    fail and are retried.  Errors are logged, not raised: the transfers report them per file.
    """
    if not settings.s3_enabled:
        log.info("S3 transfer is off (FILESTREAM_S3_ENABLED=false)")
        return
    started = datetime.now(UTC)
    bucket = settings.s3_bucket
    try:
        await in_thread(ensure_bucket, s3_client(), bucket)
        await in_thread(abort_orphaned_multipart_uploads, s3_client(), bucket, key_prefix(), initiated_before=started)
    except S3Error as exc:
        log.error("S3 bucket %s is not usable, transfers will fail until it is: %s", bucket, exc)


def key_prefix() -> str:
    """The configured prefix as a folder (``a/b/``), the way object_key uses it."""
    folder = "/".join(segment for segment in settings.s3_prefix.split("/") if segment)
    return folder + "/" if folder else ""


@app.agent(completed_topic, name="s3-transfer")
async def transfer_completed_files(stream) -> None:
    async for event in stream.events():
        file_event = decode_event(event.value, "s3-transfer")
        if settings.s3_enabled and file_event is not None and file_event.completed:
            await transfer_completed(event.key, file_event, event.message.partition)


@app.agent(retry_topic, name="s3-transfer-retries")
async def resume_transfers(stream) -> None:
    async for event in stream.events():
        _retry_requested_at.pop(event.key, None)
        if settings.s3_enabled:
            await resume_transfer(event.key, event.message.partition)


@app.timer(interval=RETRY_SCAN_INTERVAL)
async def request_retries() -> None:
    """Send the key of every file with transfer work due to the retry agent, on the file's partition."""
    if not settings.s3_enabled or app.in_recovery or app.rebalancing:
        return
    now = time.time()
    for key, requested_at in list(_retry_requested_at.items()):
        if now - requested_at > RETRY_REQUEST_TTL:
            del _retry_requested_at[key]
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == retry_topic.get_topic_name()}
    for key, record in _unsettled.records(app.consumer_generation_id):
        if record.partition not in owned or key in _retry_requested_at or _locks.locked(key):
            continue
        step = next_step(record.transfer, now)
        if step in (Step.WAIT, Step.SETTLED) or (step is Step.RETRY and not await s3_reachable()):
            continue
        _retry_requested_at[key] = now
        await retry_topic.send(key=key, value=b"", partition=record.partition)


async def transfer_completed(key: bytes, file_event: FileEvent, partition: int) -> None:
    """Start, resume or skip the transfer of a completed generation."""
    async with _locks.hold(key):
        record = load_transfer(key)
        decision = decide(
            record.transfer if record else None,
            file_id=str(file_event.file_id),
            generation=file_event.generation,
            file_hash=file_event.file_hash,
        )
        if decision.action in (TransferAction.NOTHING_TO_DO, TransferAction.STALE):
            assert record is not None
            await _repeat(key, record, file_event, decision)
        else:
            await drive(key, _begin(key, record, file_event, partition, decision))


async def _repeat(key: bytes, record: TransferRecord, file_event: FileEvent, decision: TransferDecision) -> None:
    """An event of a generation already recorded, or older: its payloads go unless the record still reads them."""
    if not record.holds_payloads(file_event.payload_epoch):
        release_payloads(key, file_event.payload_epoch, file_event.chunk_count)
    name = f"{file_event.file_id} generation {file_event.generation}"
    if decision.action is TransferAction.STALE:
        log.info("s3: %s skipped: %s", name, decision.reason)
    elif record.transfer.terminal:
        log.info("s3: %s: nothing to do (%s)", name, decision.reason)
    else:
        # Redelivered after a restart: nothing else is working on it, so carry on from where it stands.
        log.info("s3: %s: resuming (%s)", name, decision.reason)
        await drive(key, record)


def _begin(
    key: bytes, previous: TransferRecord | None, file_event: FileEvent, partition: int, decision: TransferDecision
) -> TransferRecord:
    """A fresh record for the event's generation; a superseded one's payloads are released."""
    if previous is not None:
        log.info("s3: %s: %s", file_event.file_id, decision.reason)
        if previous.payload_epoch != file_event.payload_epoch:
            release_payloads(key, previous.payload_epoch, previous.chunk_count)
    record = TransferRecord(
        transfer=TransferState.new(
            str(file_event.file_id),
            generation=file_event.generation,
            file_hash=file_event.file_hash,
            size=file_event.file_size,
            max_retries=settings.s3_max_retries,
            now=time.time(),
        ),
        partition=partition,
        payload_epoch=file_event.payload_epoch,
        chunk_count=file_event.chunk_count,
    )
    record_transition(key, record)
    return record


async def resume_transfer(key: bytes, partition: int) -> None:
    if _locks.locked(key):
        return  # in flight here: its holder carries it on
    async with _locks.hold(key):
        record = load_transfer(key)
        if record is not None and record.partition == partition:
            await drive(key, record)


async def drive(key: bytes, record: TransferRecord) -> None:
    """Carry out the record's steps until it waits for a retry, or settles and releases its payloads."""
    while True:
        step = next_step(record.transfer, time.time())
        if step is Step.WAIT:
            return
        if step is Step.SETTLED:
            release_payloads(key, record.payload_epoch, record.chunk_count)
            return
        if step is Step.RETRY and not await s3_reachable():
            return  # an outage must not use up the retries: the timer asks again
        moved = await perform(step, key, record)
        if moved is None:
            return
        record = moved
        record_transition(key, record)


async def perform(step: Step, key: bytes, record: TransferRecord) -> TransferRecord | None:
    """The record after ``step``; None when S3 cannot be asked now (the timer tries again)."""
    transfer = record.transfer
    now = time.time()
    if step is Step.QUEUE:
        return record.moved(transfer.queue(now=now))
    if step is Step.RETRY:
        return record.moved(transfer.retry(now=now))
    if step is Step.FRESH_UPLOAD:
        return record.moved(transfer.retry_invalid(now=now))
    if step is Step.INTERRUPTED:
        return record.moved(_fail(transfer, "interrupted: the worker stopped during the transfer"))
    if step is Step.UPLOAD:
        transferring = record.moved(transfer.start_transfer(now=now))
        record_transition(key, transferring)
        return await upload(key, transferring)
    if step is Step.VERIFY:
        return await verify(key, record)
    raise AssertionError(f"no action for step {step}")


async def upload(key: bytes, record: TransferRecord) -> TransferRecord:
    transfer = record.transfer
    started = time.monotonic()
    try:
        file_id = FileId.from_key(key)
        destination = object_key(settings.s3_prefix, file_id.source, file_id.path)
        metadata = object_metadata(file_id.source, file_id.path, transfer.generation, transfer.file_hash, transfer.size)
        result = await feed_thread(
            _executor,
            functools.partial(_upload_unless_newer, s3_client(), destination, transfer, metadata),
            _payload_chunks(key, record.payload_epoch, record.chunk_count),
        )
    except TRANSFER_ERRORS as exc:
        return record.moved(_fail(transfer, f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # a transfer must never stop the agent, or every event of its partitions waits
        log.exception("s3: unexpected error transferring %s", transfer.file_id)
        return record.moved(_fail(transfer, f"unexpected {type(exc).__name__}: {exc}"))
    elapsed = time.monotonic() - started
    log.info(
        "s3: uploaded %s generation %s to s3://%s/%s: %d bytes in %d part(s), %.1f MB/s",
        transfer.file_id,
        transfer.generation,
        settings.s3_bucket,
        destination,
        result.size,
        result.parts,
        result.size / max(elapsed, 1e-6) / 1e6,
    )
    return record.moved(transfer.transferred(checksum=result.checksum, now=time.time()))


def _upload_unless_newer(
    client: BaseClient, destination: str, transfer: TransferState, metadata: dict[str, str], parts: Iterable[bytes]
) -> UploadResult:
    """Executor thread: refuse to replace a newer generation, then stream the parts up."""
    stored = head_generation(client, settings.s3_bucket, destination)
    if stored is not None and transfer.generation is not None and stored > transfer.generation:
        raise NewerObjectInS3(f"s3://{settings.s3_bucket}/{destination} holds generation {stored}")
    return upload_stream(
        client,
        settings.s3_bucket,
        destination,
        parts,
        transfer.size,
        metadata,
        multipart_threshold=settings.s3_multipart_threshold,
        part_size=settings.s3_part_size,
    )


def _payload_chunks(key: bytes, epoch: int | None, chunk_count: int) -> Iterator[bytes]:
    """The generation's payloads in order, read on the event loop (the table needs the event's partition)."""
    if epoch is None:
        raise PayloadsUnavailable("the completed-file event kept no payloads (S3 was off where it was assembled)")
    for index, payload in iter_payloads(key, epoch, chunk_count):
        if payload is None:
            raise PayloadsUnavailable(f"payload of chunk {index} (epoch {epoch}) is not in the table")
        yield payload


async def verify(key: bytes, record: TransferRecord) -> TransferRecord | None:
    transfer = record.transfer
    assert transfer.checksum is not None
    file_id = FileId.from_key(key)
    destination = object_key(settings.s3_prefix, file_id.source, file_id.path)
    try:
        verification = await in_thread(
            verify_object, s3_client(), settings.s3_bucket, destination, size=transfer.size, checksum=transfer.checksum
        )
    except S3Error as exc:
        if exc.retryable:
            log.warning("s3: cannot verify %s yet: %s", transfer.file_id, exc)
            return None
        return record.moved(transfer.invalidated(f"{type(exc).__name__}: {exc}", now=time.time()))
    now = time.time()
    if verification.ok:
        return record.moved(transfer.validated(now=now))
    return record.moved(transfer.invalidated(verification.reason or "verification failed", now=now))


def _fail(transfer: TransferState, reason: str) -> TransferState:
    return transfer.fail(
        reason, now=time.time(), backoff_base=settings.s3_retry_backoff, backoff_cap=settings.s3_retry_backoff_max
    )


def record_transition(key: bytes, record: TransferRecord) -> None:
    save_transfer(key, record)
    _unsettled.note(key, record)
    transfer = record.transfer
    telemetry.transfer_recorded(transfer)
    details = [f"attempt {transfer.retries + 1} of {transfer.max_retries + 1}"]
    if transfer.message:
        details.append(transfer.message)
    if transfer.next_attempt_at is not None:
        details.append(f"next attempt in {transfer.next_attempt_at - transfer.updated_at:.1f}s")
    elif transfer.terminal and transfer.state is not State.VALID:
        details.append("given up")
    log.log(
        _log_level(transfer),
        "s3: %s generation %s is %s (%s)",
        transfer.file_id,
        transfer.generation,
        transfer.state.value,
        "; ".join(details),
    )


def _log_level(transfer: TransferState) -> int:
    """Outcomes only: the steps in between follow each other within moments."""
    if transfer.state is State.VALID:
        return logging.INFO
    if transfer.state in (State.FAILED, State.INVALID):
        return logging.ERROR if transfer.terminal else logging.WARNING
    return logging.DEBUG


def release_payloads(key: bytes, epoch: int | None, chunk_count: int) -> None:
    """S3 is done with these payloads; as their only holder (tables/payload_holds.py), it deletes them."""
    if epoch is not None:
        delete_payloads(key, epoch, list(range(chunk_count)))
