"""The app's Kafka transport: Faust's aiokafka driver with a consumer that never commits past an unprocessed record.

faust-streaming 0.15.3 can commit an offset past records it never processed, in three ways
(read in ``faust/transport/consumer.py``):

- ``_new_offset`` accepts a run of acknowledged offsets that starts one past the committed
  offset, so the record at the committed head is skipped while it is still being
  processed (faust-streaming issue #606; its fix, pull request #707, is not released).
- ``_add_gap`` counts the record that follows a jump in offsets (transaction markers,
  compaction) as a gap, that is as acknowledged, before it was processed.
- A record fetched before a rebalance is acknowledged when a stream skips it afterwards
  (its generation is stale), and that acknowledgement lands in the bookkeeping of the new
  assignment, where it can carry the commit past the same offset, fetched again and not
  yet processed.  A handler that finishes after its partition was revoked does the same,
  and so does a stream handed a record while the flow is suspended for a recovery.

And it can drop a fetched record for good: the fetcher hands each record to the streams
while waiting for ``suspend_flow`` (``_drain_messages``), so a rebalance or a recovery that
suspends the flow at that moment cancels the hand-over, and the record is gone from this
assignment; Faust counts on the seek to the committed offsets that precedes every resume
to fetch it again, but aiokafka's ``seek_to_committed`` seeks only partitions whose
committed offset is above 0, so on a partition without a commit (a file's first record is
held, or nothing was committed yet) the fetch goes on after the dropped record.  About one
run in eight of the two-worker takeover test lost one chunk so, and its file stayed
"assembling" for good.

The same seek could still miss a record: the fetcher drops a record whose offset is below
the partition's read position as a copy it handed over already, and the batch fetched
before a seek went on being handed over after it, moving that position past the records
the seek was there to fetch again (those a stream skipped while the recovery held the
flow).  Two runs in 27 of the two-worker takeover test lost one chunk that way.

filestream holds the acknowledgement of a chunk record until its file is settled (see
:class:`CommitHolds`), and runs agents with concurrency, so each of these would lose
files; the issue of lost files after a takeover was traced to them.  :class:`Consumer`
fixes the first three with the plain rule :func:`committable_offset`; the dropped record
by seeking every consumed partition without a commit back to its beginning
(:func:`partitions_to_rewind`, the ``earliest`` reset Faust configures); and the missed one
by leaving the rest of a batch fetched before a seek to the seek, which keeps its read
position (:meth:`Consumer.getmany`).  It also keeps a
recovery alive whose restore position aiokafka would refuse (:func:`seekable_offsets`).
:class:`Transport` is Faust's, with this consumer, registered for the broker URL scheme
``filestream-kafka://``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

SCHEME = "filestream-kafka"


def committable_offset(
    committed: int | None,
    acknowledged: set[int],
    gaps: Sequence[tuple[int, int]],
    in_flight: int | None,
) -> int | None:
    """The offset to commit (the next one to read), or None when the commit cannot move.

    ``committed`` is the partition's committed offset (None before its first commit);
    ``acknowledged`` the offsets whose records are processed; ``gaps`` sorted half-open
    ranges of offsets that hold no record; ``in_flight`` the smallest offset delivered and
    not yet acknowledged.  The commit moves over acknowledged offsets and gaps only, from
    the committed offset on, and never reaches an offset in flight.
    """
    if committed is not None:
        start = committed
    else:
        candidates = [*acknowledged, *(begin for begin, _ in gaps)]
        if in_flight is not None:
            candidates.append(in_flight)
        if not candidates:
            return None
        start = min(candidates)
    position = start
    gap_index = 0
    while in_flight is None or position < in_flight:
        if position in acknowledged:
            position += 1
            continue
        while gap_index < len(gaps) and gaps[gap_index][1] <= position:
            gap_index += 1
        if gap_index < len(gaps) and gaps[gap_index][0] <= position:
            position = gaps[gap_index][1]
            continue
        break
    if in_flight is not None:
        position = min(position, in_flight)
    return position if position > start else None


def partitions_to_rewind(committed: Mapping[Any, int | None], consumed: Callable[[str], bool]) -> list[Any]:
    """The partitions a seek to the committed offsets leaves where they are, though it must not.

    ``committed`` maps each assigned partition to its committed offset (None without one), as
    aiokafka's ``seek_to_committed`` answers; ``consumed`` tells the topics whose records the
    streams process (not changelogs, which recovery positions itself).  aiokafka skips the
    partitions committed at None or 0; those of consumed topics go back to their beginning.
    """
    return [tp for tp, offset in committed.items() if not offset and consumed(tp.topic)]


def seekable_offsets(offsets: Mapping[Any, int | None]) -> dict[Any, int]:
    """Faust's restore positions, each one aiokafka accepts: an offset below 0 or none reads from the start.

    Faust's recovery seeks each changelog partition to the larger of the table's own offset and
    the partition's earliest offset minus one (``-1`` for an empty one, which it maps to 0).  A
    worker once died on a loaded machine with "Offset must be a positive integer" from that seek,
    a moment after the changelogs were created; reading a changelog from its start is always a
    correct restore.
    """
    return {tp: offset if offset is not None and offset >= 0 else 0 for tp, offset in offsets.items()}


class Seeks:
    """Per partition, how many times it was sought, and the read position the last seek set."""

    def __init__(self) -> None:
        self._count: Counter[Any] = Counter()
        self._position: dict[Any, int | None] = {}

    def record(self, positions: Mapping[Any, int | None]) -> None:
        for tp, offset in positions.items():
            self._count[tp] += 1
            self._position[tp] = offset

    def mark(self) -> Counter[Any]:
        """A mark to ask later whether a partition was sought since."""
        return self._count.copy()

    def sought_since(self, mark: Counter[Any], tp: Any) -> bool:
        return self._count[tp] != mark[tp]

    def position(self, tp: Any) -> int | None:
        return self._position.get(tp)


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, committing by :func:`committable_offset` and only for the current assignment."""

    _accepting_generation: int | None = None
    _revoked = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seeks = Seeks()

    def owns(self, message: Message) -> bool:
        """Whether the assignment ``message`` was fetched under is still this consumer's: not revoked, not replaced.

        A handler that finishes after that must write nothing (tables.files), and its record is
        fetched again under the next assignment.  Not ``app.rebalancing``: that is set when a
        rebalance starts, while the partitions are still ours and commits still count.
        """
        generation = message.generation_id
        return not self._revoked and (generation is None or generation == self.app.consumer_generation_id)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        rewind = partitions_to_rewind(committed, self._consumed_by_streams)
        if rewind:
            await self._thread.seek_to_beginning(*rewind)
        # aiokafka moves only the partitions committed above 0; the others stay where they are.
        moved: dict[TP, int | None] = {tp: offset for tp, offset in committed.items() if offset}
        moved.update(dict.fromkeys(rewind))
        self._seeks.record(moved)
        return committed

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        # Faust's fetcher drops a fetched record whose offset is below the partition's read
        # position, which it takes to be a copy already handed over.  A seek sets that position
        # back, but the batch fetched before the seek goes on being handed over after it and
        # moves the position forward again, so the records the seek was there to fetch again
        # (those a recovery's suspended flow made a stream skip) are dropped.  The rest of the
        # batch is left to the seek, which fetches it again, and a record in hand-over while
        # its partition was sought gets the seek's read position back.  A seek made while the
        # fetch waited was made before the batch came (aiokafka returns records of the position
        # a seek set), so the mark is taken as its first record arrives.
        mark: Counter[Any] | None = None
        async for tp, message in super().getmany(timeout):
            if mark is None:
                mark = self._seeks.mark()
            elif self._seeks.sought_since(mark, tp):
                continue
            yield tp, message
            if self._seeks.sought_since(mark, tp):
                self._read_offset[tp] = self._seeks.position(tp)

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        await super().seek_wait(seekable_offsets(partitions))

    def _consumed_by_streams(self, topic: str) -> bool:
        return topic not in self.app.tables.changelog_topics and self.app.topics.acks_enabled_for(topic)

    def committed_offset(self, tp: TP) -> int | None:
        """The committed offset as this consumer knows it: the group's at assignment, then its own commits."""
        return self._committed_offset.get(tp)

    def ack(self, message: Message) -> bool:
        stale = message.generation_id is not None and message.generation_id != self._accepting_generation
        # While the flow is suspended (from a revocation until the recovery has sought the
        # partitions again), a stream skips each record it is handed and acknowledges it unprocessed.
        if stale or not self.app.flow_control.is_active():
            # After the rebalance or the recovery the record is fetched and processed again.
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return bool(super().ack(message))

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._accepting_generation = None
        self._revoked = True
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._accepting_generation = self.app.consumer_generation_id
        self._revoked = False
        await super().on_partitions_assigned(assigned, generation_id)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust passes the offset of the record after the jump as offset_to, and counts it in
        # the gap; that record is real and not processed yet.
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gap_tree = self._gap[tp]
        gaps = sorted((interval.begin, interval.end) for interval in gap_tree)
        offset = committable_offset(self._committed_offset[tp], set(acked), gaps, self._in_flight(tp))
        if offset is None:
            return None
        # Forget what the commit covers, as Faust's own implementation does.
        acked[:] = [acked_offset for acked_offset in acked if acked_offset >= offset]
        self._acked_index[tp].intersection_update(acked)
        gap_tree.chop(0, offset)
        return offset

    def _in_flight(self, tp: TP) -> int | None:
        # Of every assignment, not only the current one: while a revoked partition's records are
        # still held (a stop commits after the revocation), the commit must not pass them either.
        offsets = [message.offset for message in list(self._unacked_messages) if message.tp == tp]
        return min(offsets) if offsets else None


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


# Faust picks a transport by the URL scheme; this is the in-process form of the
# `faust.transports` entry point a packaged transport would declare.
drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def consumer_urls(broker_urls: Iterable[str]) -> list[str]:
    """The broker URLs with this transport's scheme, for the app's ``broker_consumer`` setting."""
    return [f"{SCHEME}://{url.split('://', 1)[1]}" for url in broker_urls]


class CommitHolds:
    """Records whose acknowledgement waits for their file to settle, so the commit stays below them.

    One record per file is enough: the first one of the file this assignment delivered.  The
    commit cannot pass it, so after a crash, a restart or a takeover every later record of the
    file is delivered again, and the worker rebuilds what it kept only locally (the spool) from
    them.  A held record keeps its message object, without its payload.
    """

    def __init__(self) -> None:
        self._held: dict[TP, dict[bytes, Any]] = {}

    def hold(self, message: Message, file_key: bytes) -> bool:
        """Hold ``message`` for ``file_key``; False (the caller acknowledges it) if the file is held already."""
        held = self._held.setdefault(message.tp, {})
        if file_key in held:
            return False
        message.value = None  # the payload is spooled; the held record needs only its offset
        held[file_key] = message
        return True

    def release(self, tp: TP, file_key: bytes, consumer: Any) -> None:
        """The file is settled: acknowledge its held record, so the commit can move past it."""
        message = self._held.get(tp, {}).pop(file_key, None)
        if message is not None:
            message.ack(consumer)

    def drop(self, tps: Iterable[TP]) -> None:
        """The partitions were revoked: their held records will be delivered again; never acknowledge these."""
        for tp in tps:
            self._held.pop(tp, None)

    def held(self, tp: TP) -> dict[bytes, int]:
        """The held files of a partition and the offsets that hold them."""
        return {key: message.offset for key, message in self._held.get(tp, {}).items()}

    def __len__(self) -> int:
        return sum(len(held) for held in self._held.values())
