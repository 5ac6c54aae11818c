"""Producing files to the chunk topic: acknowledgements, bounded memory, retries.

A file counts as sent only when the broker has acknowledged every one of its chunks
(``acks="all"``); only then is it written to the registry.  When chunks fail, the
uploader stops taking new files, waits for everything in flight, and re-sends the
failed chunks after a growing pause; when the retries run out it gives up and every
file not acknowledged is reported as not sent.

Memory stays bounded: payloads are kept in memory only for files within the keep
limit (``client/chunking.py``), and only for two of them at a time (the file being
sent and the next one, read ahead); and at most ``max_in_flight_bytes`` of encoded
chunks are handed to the producer and not yet acknowledged.  (aiokafka's own
back-pressure, one pending batch per partition, usually binds first; the budget is
what still holds with many partitions or large chunks.)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from client.chunk_producer import (
    AUTHORIZATION_ERRORS,
    BROKER_ERRORS,
    ByteBudget,
    ProducerLike,
    describe_error,
    kafka_producer,
    not_authorized,
    prepare_broker,
)
from client.chunking import ChunkPayloads, FileChangedError, ScannedFile, chunk_record, scan_file
from client.discovery import LocalFile, Rejected
from client.kafka_security import BrokerAccessError
from client.registry import Registry
from client.topics import TopicMismatch
from client.upload_options import UploadOptions
from client.upload_report import FileResult, Outcome, Progress, UploadReport
from errors import ClientSideError
from logs import file_fields
from models.chunk import encode_chunk
from settings import Settings

log = logging.getLogger(__name__)


class UploadAborted(ClientSideError, RuntimeError):
    """The broker stayed unavailable through every retry, or the topics are set up wrongly."""


@dataclass(eq=False)
class _Delivery:
    """One generation of one file on its way: which chunks still lack an acknowledgement."""

    file: LocalFile
    scanned: ScannedFile
    payloads: ChunkPayloads
    generation: int
    unacked: set[int]
    failed: set[int] = field(default_factory=set)
    abandoned: bool = False


class Uploader:
    """Sends files with per-file acknowledgement tracking; reusable across calls to :meth:`upload`."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        options: UploadOptions,
        progress: Progress,
        *,
        producer_factory: Callable[[], ProducerLike] | None = None,
        prepare_topics: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.options = options
        self.progress = progress
        self._producer_factory = producer_factory or partial(kafka_producer, settings, options)
        self._prepare_topics = prepare_topics or partial(prepare_broker, settings, request_timeout=options.ack_timeout)
        self._producer: ProducerLike | None = None
        self._topics_ready = False
        self._budget = ByteBudget(options.max_in_flight_bytes)
        self._outstanding: set[asyncio.Future[Any]] = set()
        # A dict as an insertion-ordered set: failures are reported in upload order.
        self._deliveries: dict[_Delivery, None] = {}
        self._broker_error: BaseException | None = None
        self._results: dict[LocalFile, FileResult] = {}
        self._queue: deque[LocalFile] = deque()
        self._preparing: tuple[LocalFile, asyncio.Task[_Delivery | None]] | None = None
        self._reads: dict[LocalFile, int] = {}

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def upload(self, files: Sequence[LocalFile]) -> list[FileResult]:
        """Send ``files``; one result per file, in order.

        Never raises for a per-file problem or a broker outage; raises BrokerAccessError when
        the brokers refuse the credentials or the ACLs refuse the user, which ends the run.
        """
        self._results = {}
        self._queue = deque(files)
        self._reads = {}
        # Whatever went wrong in an earlier call was either cured or reported there.
        self._broker_error = None
        self.progress.planned(len(files), sum(file.signature.size for file in files))
        try:
            await self._connect()
            # Files re-read after a change go back into the queue, possibly during the final recovery.
            while True:
                if self._broker_error is not None:
                    await self._recover()
                if self._queue or self._preparing is not None:
                    delivery = await self._next_delivery()
                    if delivery is not None:
                        self._deliveries[delivery] = None
                        await self._send_chunks(delivery, sorted(delivery.unacked))
                    continue
                await self._drain()
                if self._broker_error is None and not self._queue:
                    break
        except UploadAborted as exc:
            self._abort(f"not sent: {exc}")
        finally:
            if self._preparing is not None:
                self._preparing[1].cancel()
                self._preparing = None
        return [self._results[file] for file in files]

    # -- one file -------------------------------------------------------------------------

    async def _next_delivery(self) -> _Delivery | None:
        """The next file, read and hashed while the previous file's chunks were going out.

        The producer keeps one request in flight, so without this overlap it would sit
        idle while each file is scanned (measured: a fifth of the time on 64 MiB files).
        """
        if self._preparing is None:
            self._preparing = self._start_preparing()
        delivery = await self._preparing[1]
        self._preparing = self._start_preparing() if self._queue else None
        return delivery

    def _start_preparing(self) -> tuple[LocalFile, asyncio.Task[_Delivery | None]]:
        file = self._queue.popleft()
        return file, asyncio.create_task(self._prepare(file))

    async def _prepare(self, file: LocalFile) -> _Delivery | None:
        """Read and hash ``file`` into a delivery; None when it needs no sending, failed, or must be read again."""
        sent = self.registry.sent(file.file_id)
        if sent is not None and sent.signature == file.signature:
            self._finish(FileResult(file, Outcome.UNCHANGED, "already sent", sent.generation))
            return None
        self._reads[file] = self._reads.get(file, 0) + 1
        try:
            scanned, payloads = await asyncio.to_thread(
                scan_file, file.path, self.options.chunk_size, self.options.keep_limit
            )
        except FileChangedError:
            self._read_again_or_fail(file, "kept changing while it was being read")
            return None
        except OSError as exc:
            self._fail(file, unreadable(exc))
            return None
        if sent is not None and sent.file_hash == scanned.file_hash:
            # Touched but not changed: remember the new signature so the next run skips it unread.
            self.registry.record_sent(file.file_id, sent.generation, scanned.signature, scanned.file_hash)
            self._finish(FileResult(file, Outcome.UNCHANGED, "same content already sent", sent.generation))
            return None
        generation = self.registry.allocate_generation(file.file_id)
        return _Delivery(file, scanned, payloads, generation, unacked=set(range(scanned.chunk_count)))

    async def _send_chunks(self, delivery: _Delivery, indexes: list[int]) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("chunks sent before the producer started")
        for position, index in enumerate(indexes):
            payload = delivery.payloads.pop_kept(index)
            try:
                if payload is None:
                    payload = await asyncio.to_thread(delivery.payloads.read, index)
            except OSError as exc:
                self._abandon(delivery, exc)
                return
            record = chunk_record(delivery.file.file_id, delivery.generation, delivery.scanned, index, payload)
            value = encode_chunk(record)
            await self._budget.acquire(len(value))
            try:
                future = await producer.send(self.settings.chunks_topic, value, key=delivery.file.file_id.key)
            except BROKER_ERRORS as exc:
                self._budget.release(len(value))
                delivery.failed.update(indexes[position:])
                self._broker_error = exc
                return
            self._outstanding.add(future)
            future.add_done_callback(partial(self._on_chunk_done, delivery, index, len(value), len(payload)))

    def _on_chunk_done(
        self, delivery: _Delivery, index: int, value_size: int, payload_size: int, future: asyncio.Future[Any]
    ) -> None:
        self._budget.release(value_size)
        self._outstanding.discard(future)
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if error is not None:
            delivery.failed.add(index)
            self._broker_error = error
            return
        delivery.unacked.discard(index)
        self.progress.advanced(payload_size)
        if not delivery.unacked and not delivery.abandoned:
            self._deliveries.pop(delivery, None)
            scanned = delivery.scanned
            try:
                self.registry.record_sent(
                    delivery.file.file_id, delivery.generation, scanned.signature, scanned.file_hash
                )
            except sqlite3.Error as exc:
                self._fail(delivery.file, f"sent, but the registry could not record it ({exc}); it will be sent again")
                return
            self._finish(FileResult(delivery.file, Outcome.SENT, "", delivery.generation, scanned.size))

    def _abandon(self, delivery: _Delivery, error: OSError) -> None:
        """The file changed or vanished between the scan and sending a chunk: this generation is dropped."""
        delivery.abandoned = True
        self._deliveries.pop(delivery, None)
        if isinstance(error, FileChangedError):
            self._read_again_or_fail(delivery.file, "changed while it was being sent")
        else:
            self._fail(delivery.file, unreadable(error))

    def _read_again_or_fail(self, file: LocalFile, problem: str) -> None:
        if self._reads[file] < self.options.read_attempts:
            log.warning("%s %s; reading it again", file.path, problem, extra=file_fields(file.file_id))
            self._queue.append(file)
        else:
            self._fail(file, f"{problem} ({self._reads[file]} tries)")

    def _fail(self, file: LocalFile, reason: str) -> None:
        log.error("%s: %s", file.path, reason, extra=file_fields(file.file_id))
        self._finish(FileResult(file, Outcome.FAILED, reason))

    def _finish(self, result: FileResult) -> None:
        self._results[result.file] = result
        self.progress.finished(result)

    def _abort(self, reason: str) -> None:
        for delivery in self._deliveries:
            delivery.abandoned = True
        unsent = [delivery.file for delivery in self._deliveries] + list(self._queue)
        if self._preparing is not None:
            unsent.append(self._preparing[0])
        self._deliveries.clear()
        self._queue.clear()
        # dict.fromkeys: a file being prepared may also be back in the queue to be read again.
        for file in dict.fromkeys(unsent):
            if file not in self._results:
                self._fail(file, reason)

    # -- the broker -----------------------------------------------------------------------

    async def _connect(self) -> None:
        """Create the topics (again after trouble: a restarted dev broker forgets them) and start the producer.

        A failure is left in ``_broker_error`` for :meth:`_recover`; a topic set up
        wrongly is not something a retry cures, so it aborts at once, and refused
        credentials or ACLs end the run (BrokerAccessError).
        """
        try:
            if not self._topics_ready:
                await self._prepare_topics()
                self._topics_ready = True
            if self._producer is None:
                producer = self._producer_factory()
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        except TopicMismatch as exc:
            raise UploadAborted(str(exc)) from exc
        except AUTHORIZATION_ERRORS as exc:
            action = f"create and describe its topics ({exc})"
            grant = "an ACL must allow it CREATE and DESCRIBE on them, or an administrator creates them"
            raise BrokerAccessError(not_authorized(self.settings, exc, action, grant)) from exc
        except BROKER_ERRORS as exc:
            self._broker_error = exc

    async def _drain(self) -> None:
        if self._outstanding:
            await asyncio.wait(set(self._outstanding))

    async def _recover(self) -> None:
        """Retry, with growing pauses, until the broker has taken every failed chunk; else :class:`UploadAborted`."""
        if isinstance(self._broker_error, AUTHORIZATION_ERRORS):
            action = f"write to topic {self.settings.chunks_topic}"
            grant = "an ACL must allow it WRITE (and DESCRIBE) on that topic"
            raise BrokerAccessError(not_authorized(self.settings, self._broker_error, action, grant))
        await self._drain()
        for attempt in range(1, self.options.retries + 1):
            if self._broker_error is None:
                return
            pause = self.options.backoff(attempt)
            waiting = [delivery for delivery in self._deliveries if delivery.failed]
            log.warning(
                "broker problem (%s); %d file(s) waiting; retry %d of %d in %.1f s",
                describe_error(self._broker_error),
                len(waiting) + len(self._queue),
                attempt,
                self.options.retries,
                pause,
            )
            await asyncio.sleep(pause)
            self._broker_error = None
            self._topics_ready = False
            await self._connect()
            if self._broker_error is not None:
                continue
            for delivery in waiting:
                indexes, delivery.failed = sorted(delivery.failed), set()
                await self._send_chunks(delivery, indexes)
            await self._drain()
        if self._broker_error is not None:
            raise UploadAborted(
                f"broker {','.join(self.settings.bootstrap_servers)} still failing after "
                f"{self.options.retries} retries ({describe_error(self._broker_error)})"
            )


def unreadable(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "vanished before it could be read"
    return f"cannot be read: {error.strerror or error}"


async def upload_once(uploader: Uploader, files: Sequence[LocalFile], rejected: Sequence[Rejected]) -> UploadReport:
    started = time.monotonic()
    results = await uploader.upload(files)
    return UploadReport(results, list(rejected), time.monotonic() - started)
