"""Reassembly agent: chunk records in, whole verified files and completed/failed events out.

The work is tables/assembler.py; this is its wiring to Faust.  Each record's offset is
committed only once its file is settled: the agent acknowledges it at once when it needs
nothing more, and otherwise holds the first record of the file (transport.CommitHolds)
until the file is settled (completed, or failed, and no S3 transfer reads its spooled
bytes).  So after a crash, a restart or a takeover, the chunks of every unsettled file are
delivered again and refill the spool, which no process trusts after another.

No record can stop this agent: one that is rejected goes to the dead-letter topic with
its reason; an unexpected error while handling one fails its file, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from faust.types import TP

import telemetry
from app import app, chunks_topic, completed_topic, dead_letter_topic, settings, transfer_requests_topic
from models.events import FileEvent
from models.identity import FileId, InvalidIdentity
from storage.spool import Spool
from tables.assembler import Assembler, AssemblyConfig, Verdict
from tables.assembly import Status
from tables.files import AssignmentLost, assemblies
from tables.transfers import transfers
from transport import CommitHolds

log = logging.getLogger(__name__)

T = TypeVar("T")

spool = Spool(settings.data_dir / f"{settings.app_id}-spool")
holds = CommitHolds()
_owned_partitions: set[int] = set()


async def publish_event(key: bytes, event: FileEvent, partition: int) -> None:
    """Send the event and wait for the broker's acknowledgement."""
    await (await completed_topic.send(key=key, value=event.dumps(), partition=partition))


async def run_blocking(call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, call)


assembler = Assembler(
    AssemblyConfig(
        codec=settings.chunk_codec,
        openmsistream_source=settings.openmsistream_source,
        limits=settings.chunk_limits,
        output_dir=settings.output_dir,
        write_output=settings.write_output,
        s3_enabled=settings.s3_enabled,
        s3_max_retries=settings.s3_max_retries,
    ),
    assemblies,
    transfers,
    spool,
    publish_event,
    run_blocking,
)


def chunk_partition(partition: int) -> TP:
    return TP(chunks_topic.get_topic_name(), partition)


# mode types a signal handler as taking any positional arguments; Faust sends this signal none.
@app.on_worker_init.connect  # type: ignore[arg-type]
def start_with_an_empty_spool(sender: Any, **kwargs: Any) -> None:
    spool.wipe()


# mode types a signal handler as taking any positional arguments; Faust sends this signal one, named here.
@app.on_partitions_revoked.connect  # type: ignore[arg-type]
async def forget_held_records(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
    holds.drop(tp for tp in revoked if tp.topic == chunks_topic.get_topic_name())


# mode types a signal handler as taking any positional arguments; Faust sends this signal one, named here.
@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def forget_spools_of_lost_partitions(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
    now_owned = {tp.partition for tp in assigned if tp.topic == chunks_topic.get_topic_name()}
    for partition in _owned_partitions - now_owned:
        assembler.forget_partition(partition)
    _owned_partitions.clear()
    _owned_partitions.update(now_owned)


@app.agent(chunks_topic, name="reassembly")
async def reassemble(stream: Any) -> None:
    async for event in stream.noack().events():
        await handle_record(event)


async def handle_record(event: Any) -> None:
    message = event.message
    try:
        verdict = await assembler.handle(event.key, event.value, message.partition)
    except AssignmentLost as exc:
        log.info("%s: the record at offset %d is handled again after the rebalance", exc, message.offset)
        return  # never acknowledged
    except Exception as exc:  # a record must never stop the agent
        log.exception("error handling the record at offset %d of partition %d", message.offset, message.partition)
        telemetry.chunk_rejected("error")
        try:
            verdict = await fail_file_of(event, f"{type(exc).__name__}: {exc}")
        except Exception:  # failing the file needs the broker too: leave the record unacknowledged, so it comes again
            log.exception(
                "cannot fail the file of the record at offset %d of partition %d", message.offset, message.partition
            )
            return
    try:
        if verdict.rejected:
            await send_to_dead_letters(event, verdict.rejected)
        if verdict.transfer_ready and verdict.file_key is not None:
            await request_transfer(verdict.file_key, message.partition)
    except Exception:  # the broker refused: leave the record unacknowledged, so it comes again
        log.exception("cannot report the record at offset %d of partition %d", message.offset, message.partition)
        return
    settle(event, verdict)


def settle(event: Any, verdict: Verdict) -> None:
    message = event.message
    if verdict.settled:
        if verdict.file_key is not None:
            holds.release(message.tp, verdict.file_key, app.consumer)
        event.ack()
    elif verdict.file_key is None or not holds.hold(message, verdict.file_key):
        event.ack()


def release_if_settled(file_key: bytes, partition: int) -> None:
    """Called by the other agents when they finish with a file: its held record may go."""
    if assembler.settled(file_key):
        holds.release(chunk_partition(partition), file_key, app.consumer)


async def fail_file_of(event: Any, reason: str) -> Verdict:
    """The record caused an unexpected error: its file (if it names one) fails, the record is dead-lettered."""
    try:
        file_id = FileId.from_key(event.key or b"")
    except InvalidIdentity:
        return Verdict(settled=True, rejected=f"error: {reason}")
    state = assembler.state(file_id.key)
    if state is not None and state.status is Status.ASSEMBLING:
        with contextlib.suppress(AssignmentLost):  # its next owner handles the record again
            await assembler.fail(file_id, state, f"error while handling a chunk: {reason}")
    return Verdict(assembler.settled(file_id.key), rejected=f"error: {reason}", file_key=file_id.key)


async def send_to_dead_letters(event: Any, reason: str) -> None:
    """The record as it came, with why and where from in its headers (as Kafka Connect's dead-letter queue)."""
    message = event.message
    headers = [
        ("filestream.error.reason", reason.encode("utf-8", "replace")[:4096]),
        ("filestream.error.topic", message.topic.encode()),
        ("filestream.error.partition", str(message.partition).encode()),
        ("filestream.error.offset", str(message.offset).encode()),
    ]
    await (await dead_letter_topic.send(key=event.key, value=event.value, headers=headers))
    telemetry.dead_lettered(reason)


async def request_transfer(file_key: bytes, partition: int) -> None:
    """Wake the S3 transfer of a file whose spooled bytes are complete again (after a takeover)."""
    await transfer_requests_topic.send(key=file_key, value=b"", partition=partition)
