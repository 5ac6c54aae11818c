"""S3 transfer agent: every completed file goes from the worker's spool to S3, checked by S3's own checksum.

Level-triggered: the reassembly creates a file's record in the ``transfers`` table when the
file completes (tables/assembler.py), and this agent drives every record of its partitions
that is not settled (tables/transfer_driver.py), whatever woke it: the file's completed
event, a request on the transfer-requests topic (after a takeover brought the file's bytes
back into the spool), or the reconciliation timer that looks for due work every few
seconds.  A lost or skipped event, a rebalance or a kill can delay a transfer, never drop it.

Several files are in flight at once (``FILESTREAM_S3_CONCURRENCY`` actors on each topic, one
driver per file) and the parts of a multipart upload go up in parallel
(``FILESTREAM_S3_THREADS``); boto3 only ever runs in executor threads, so the worker keeps
heartbeating and consuming.  Table writes need an event of the file's partition, so the
timer never writes: it sends the file's key to the transfer-requests topic, on the file's
partition.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from botocore.client import BaseClient
from faust.types import TP

import telemetry
from agents.reassembly import assembler, release_if_settled, spool
from app import app, completed_topic, settings, transfer_requests_topic
from errors import IdentityError
from models.identity import FileId, InvalidIdentity, file_partition
from storage.objects import key_folder, object_key, object_metadata
from storage.s3 import S3BucketMissing, S3Error, S3Unreachable, ensure_bucket, make_s3_client, translated_errors
from storage.s3_upload import (
    PartLayout,
    PendingUpload,
    abort_uploads,
    upload_file,
    verify_object,
)
from storage.spool import SpoolKey
from tables.files import AssignmentLost
from tables.transfer_bookkeeping import Probe
from tables.transfer_driver import DriverConfig, S3Unanswered, TransferDriver, TransferFailed, Uploaded, outcome_level
from tables.transfer_record import Step, TransferRecord
from tables.transfer_state import State, full_jitter
from tables.transfers import transfers, unsettled

log = logging.getLogger(__name__)

T = TypeVar("T")

# Often enough that a retry starts soon after its backoff ends.
RETRY_SCAN_INTERVAL = min(5.0, max(0.5, settings.s3_retry_backoff / 2))
# A transfer request not handled within this time (its partition moved, or it was lost) is sent again.
REQUEST_TTL = 60.0

_calls = ThreadPoolExecutor(settings.s3_concurrency + 2, thread_name_prefix="s3")
_parts = ThreadPoolExecutor(settings.s3_threads, thread_name_prefix="s3-part")
_requested_at: dict[bytes, float] = {}


@functools.cache
def s3_client() -> BaseClient:
    return make_s3_client(settings.s3_concurrency + settings.s3_threads + 2)


async def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_calls, functools.partial(call, *args, **kwargs))


def destination(file_key: bytes) -> str:
    file_id = FileId.from_key(file_key)
    return object_key(settings.s3_prefix, file_id.source, file_id.path)


class BotoTransferCalls:
    """The transfer driver's S3 calls (tables.transfer_driver.S3Calls) with boto3, in executor threads."""

    def __init__(self) -> None:
        self.layout = PartLayout(settings.s3_multipart_threshold, settings.s3_part_size)
        self.reachable = Probe(
            lambda: in_thread(self._answers), max_age=RETRY_SCAN_INTERVAL, on_change=self._report_reachability
        )

    async def upload(self, file_key: bytes, record: TransferRecord, spooled: Path) -> Uploaded:
        transfer = record.transfer
        try:
            key = destination(file_key)
            file_id = FileId.from_key(file_key)
            metadata = object_metadata(
                file_id.source, file_id.path, transfer.generation, transfer.file_hash, transfer.size
            )
            try:
                result = await self._upload(key, spooled, transfer.size, metadata, record.expected_checksum)
            except S3BucketMissing:
                # Created when first needed, not only at start: S3 may have been away then.
                await in_thread(ensure_bucket, s3_client(), settings.s3_bucket)
                result = await self._upload(key, spooled, transfer.size, metadata, record.expected_checksum)
        except S3Unreachable as exc:
            raise S3Unanswered(str(exc)) from exc
        except (S3Error, IdentityError, OSError) as exc:  # S3 refused, the name makes no key, the spool is unreadable
            raise TransferFailed(f"{type(exc).__name__}: {exc}") from exc
        log.info(
            "s3: uploaded %s generation %s to s3://%s/%s: %d bytes in %d part(s)",
            transfer.file_id,
            transfer.generation,
            settings.s3_bucket,
            key,
            result.size,
            result.parts,
        )
        return Uploaded(result.checksum, result.size, result.parts, result.confirmed)

    async def _upload(self, key: str, spooled: Path, size: int, metadata: dict[str, str], expected: str | None) -> Any:
        return await in_thread(
            upload_file,
            s3_client(),
            settings.s3_bucket,
            key,
            spooled,
            size,
            metadata,
            layout=self.layout,
            part_pool=_parts,
            expected_checksum=expected,
        )

    async def verify(self, file_key: bytes, record: TransferRecord) -> str | None:
        transfer = record.transfer
        assert transfer.checksum is not None  # noqa: S101  (a done transfer has its checksum)
        try:
            return await in_thread(
                verify_object,
                s3_client(),
                settings.s3_bucket,
                destination(file_key),
                size=transfer.size,
                checksum=transfer.checksum,
            )
        except S3Error as exc:
            if exc.retryable:
                raise S3Unanswered(str(exc)) from exc
            return f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _answers() -> bool:
        """Executor thread: whether the endpoint answers at all; an error answer counts."""
        try:
            with translated_errors(settings.s3_bucket):
                s3_client().head_bucket(Bucket=settings.s3_bucket)
        except S3Unreachable:
            return False
        except S3Error:
            pass  # an error is an answer too
        return True

    @staticmethod
    def _report_reachability(reachable: bool) -> None:
        if reachable:
            log.info("s3: the endpoint answers; transfers go ahead")
        else:
            log.warning("s3: the endpoint is unreachable; transfers wait for it without using up their retries")


def spooled_path(file_key: bytes, record: TransferRecord) -> Path:
    assert record.payload_epoch is not None  # noqa: S101  (the driver uploads only records with bytes)
    return spool.path(SpoolKey(record.partition, file_key, record.payload_epoch))


def release_bytes(file_key: bytes, record: TransferRecord) -> None:
    """The transfer settled: its spooled bytes go, and the file's chunk offsets may be committed."""
    if record.payload_epoch is not None:
        spool.discard(SpoolKey(record.partition, file_key, record.payload_epoch))
    release_if_settled(file_key, record.partition)


def record_transition(file_key: bytes, record: TransferRecord) -> None:
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
        outcome_level(transfer),
        "s3: %s generation %s is %s (%s)",
        transfer.file_id,
        transfer.generation,
        transfer.state.value,
        "; ".join(details),
    )


driver = TransferDriver(
    transfers,
    BotoTransferCalls(),
    DriverConfig(
        backoff_base=settings.s3_retry_backoff,
        backoff_cap=settings.s3_retry_backoff_max,
        concurrency=settings.s3_concurrency,
    ),
    bytes_ready=assembler.transfer_bytes_ready,
    spooled_path=spooled_path,
    release=release_bytes,
    on_transition=record_transition,
    jitter=full_jitter,
)


async def drive(file_key: bytes | None, partition: int) -> None:
    if not settings.s3_enabled or file_key is None:
        return
    record = transfers.load(file_key)
    if record is None or record.partition != partition:
        return
    try:
        await driver.drive(file_key)
    except AssignmentLost:
        log.info("s3: %s moved to another worker during its transfer", record.transfer.file_id)
    except Exception:  # a transfer must never stop the agent; the reconciliation tries it again
        log.exception("s3: unexpected error driving the transfer of %s", record.transfer.file_id)


@app.agent(completed_topic, name="s3-transfer", concurrency=settings.s3_concurrency)
async def transfer_completed_files(stream: Any) -> None:
    async for event in stream.events():
        await drive(event.key, event.message.partition)


@app.agent(transfer_requests_topic, name="s3-transfer-requests", concurrency=settings.s3_concurrency)
async def transfer_requested_files(stream: Any) -> None:
    async for event in stream.events():
        _requested_at.pop(event.key, None)
        await drive(event.key, event.message.partition)


@app.task
async def prepare_bucket() -> None:
    """Create the bucket if it is missing; if S3 does not answer now, transfers create it when first needed."""
    if not settings.s3_enabled:
        log.info("S3 transfer is off (FILESTREAM_S3_ENABLED=false)")
        return
    try:
        await in_thread(ensure_bucket, s3_client(), settings.s3_bucket)
    except S3Error as exc:
        log.warning("S3 bucket %s is not usable yet, transfers wait for it: %s", settings.s3_bucket, exc)


@app.timer(interval=RETRY_SCAN_INTERVAL)
async def reconcile() -> None:
    """Ask for every unsettled transfer of this worker's partitions with work due, on the file's partition."""
    if not settings.s3_enabled or app.in_recovery or app.rebalancing:
        return
    now = time.time()
    for file_key, requested_at in list(_requested_at.items()):
        if now - requested_at > REQUEST_TTL:
            del _requested_at[file_key]
    owned = owned_partitions()
    for file_key, record in unsettled.records(app.consumer_generation_id):
        if record.partition not in owned or file_key in _requested_at or driver.busy(file_key):
            continue
        step = driver.next_step(file_key, record)
        if step in (Step.WAIT, Step.AWAIT_BYTES):
            continue
        _requested_at[file_key] = now
        await transfer_requests_topic.send(key=file_key, value=b"", partition=record.partition)


def owned_partitions() -> set[int]:
    topic = transfer_requests_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


# mode types a signal handler as taking any positional arguments; Faust sends this signal one, named here.
@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def abort_orphaned_uploads(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
    """Abort the unfinished multipart uploads of the files this worker now owns and does not upload itself.

    A worker killed mid-upload leaves them behind; uploads of other live workers' partitions are
    theirs, and left alone.  Production buckets should also carry an AbortIncompleteMultipartUpload
    lifecycle rule (README).
    """
    if settings.s3_enabled:
        app.loop.create_task(_abort_orphans(owned_partitions()))


async def _abort_orphans(owned: set[int]) -> None:
    folder = key_folder(settings.s3_prefix)

    def orphaned(upload: PendingUpload) -> bool:
        try:
            file_key = FileId.from_key(upload.key.removeprefix(folder).encode()).key
        except InvalidIdentity:
            return False
        return file_partition(file_key, settings.partitions) in owned and not driver.busy(file_key)

    try:
        await in_thread(abort_uploads, s3_client(), settings.s3_bucket, folder, orphaned)
    except S3Error as exc:
        log.warning("s3: could not look for orphaned multipart uploads: %s", exc)
