"""The commit rule: the committed offset moves over processed records and gaps only, never past one in flight."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from transport import CommitHolds, Consumer, Seeks, committable_offset, partitions_to_rewind, seekable_offsets


def test_the_commit_moves_over_a_contiguous_run_of_acknowledged_offsets():
    assert committable_offset(10, {10, 11, 12}, [], None) == 13


def test_the_record_at_the_committed_head_still_in_flight_holds_the_commit():
    # faust-streaming #606: Faust 0.15.3 commits 14 here, losing offset 10.
    assert committable_offset(10, {11, 12, 13}, [], 10) is None
    assert committable_offset(10, {11, 12, 13}, [], None) is None


def test_a_gap_of_offsets_without_records_is_crossed_but_not_the_record_after_it():
    assert committable_offset(10, {10, 11}, [(12, 15)], 15) == 15
    assert committable_offset(10, {10, 11, 15}, [(12, 15)], None) == 16


def test_an_in_flight_record_caps_the_commit_even_inside_acknowledged_ones():
    assert committable_offset(0, {0, 1, 2, 3, 4}, [], 2) == 2


def test_without_a_committed_offset_the_run_starts_at_the_first_known_offset():
    assert committable_offset(None, {5, 6}, [], None) == 7
    assert committable_offset(None, {6, 7}, [], 5) is None
    assert committable_offset(None, set(), [], None) is None


@given(
    committed=st.integers(0, 50),
    records=st.lists(st.sampled_from(["acked", "in-flight", "gap", "unseen"]), min_size=1, max_size=60),
)
def test_no_offset_below_the_commit_is_in_flight_or_unprocessed(committed: int, records: list[str]) -> None:
    offsets = {committed + index: kind for index, kind in enumerate(records)}
    acknowledged = {offset for offset, kind in offsets.items() if kind == "acked"}
    gaps = [(offset, offset + 1) for offset, kind in offsets.items() if kind == "gap"]
    in_flight = [offset for offset, kind in offsets.items() if kind == "in-flight"]
    new = committable_offset(committed, acknowledged, gaps, min(in_flight) if in_flight else None)
    if new is None:
        assert offsets[committed] not in ("acked", "gap") or (in_flight and min(in_flight) == committed)
        return
    assert new > committed
    assert all(offsets[offset] in ("acked", "gap") for offset in range(committed, new))
    # As far as it can go: the offset at the new commit is not done yet.
    assert offsets.get(new) in (None, "in-flight", "unseen")


def test_consumed_partitions_without_a_commit_are_rewound_changelogs_and_committed_ones_are_not():
    # aiokafka's seek_to_committed leaves the first two where the fetch stands: after a record
    # dropped while the flow was suspended, that is past it.
    committed = {
        TP("chunks", 0): None,
        TP("chunks", 1): 0,
        TP("chunks", 2): 17,
        TP("app-assemblies-changelog", 0): None,
    }
    rewind = partitions_to_rewind(committed, consumed=lambda topic: not topic.endswith("-changelog"))
    assert rewind == [TP("chunks", 0), TP("chunks", 1)]


class Message:
    """What CommitHolds touches of Faust's message: its partition, offset, payload and ack."""

    def __init__(self, partition: int, offset: int) -> None:
        self.tp = TP("chunks", partition)
        self.offset = offset
        self.value: bytes | None = b"payload" * 100
        self.acked_by: object = None

    def ack(self, consumer: object) -> None:
        self.acked_by = consumer


def test_a_file_holds_its_first_record_only_without_the_payload_until_it_is_released():
    holds = CommitHolds()
    first, second = Message(0, 5), Message(0, 9)
    assert holds.hold(first, b"lab/a")
    assert not holds.hold(second, b"lab/a")
    assert first.value is None and second.value is not None
    assert holds.held(TP("chunks", 0)) == {b"lab/a": 5}
    consumer = object()
    holds.release(TP("chunks", 0), b"lab/a", consumer)
    assert first.acked_by is consumer and len(holds) == 0
    holds.release(TP("chunks", 0), b"lab/a", consumer)  # releasing twice is harmless


def test_records_held_for_revoked_partitions_are_dropped_never_acknowledged():
    holds = CommitHolds()
    kept, revoked = Message(0, 1), Message(1, 2)
    holds.hold(kept, b"lab/a")
    holds.hold(revoked, b"lab/b")
    holds.drop([TP("chunks", 1)])
    holds.release(TP("chunks", 1), b"lab/b", object())
    assert revoked.acked_by is None
    assert holds.held(TP("chunks", 0)) == {b"lab/a": 1}


class FlowControl:
    def __init__(self, active: bool) -> None:
        self.active = active

    def is_active(self) -> bool:
        return self.active


def consumer_of_generation(generation: int, *, flow_active: bool) -> Consumer:
    """transport.Consumer with the bookkeeping its ack touches, and no broker."""
    consumer = Consumer.__new__(Consumer)
    consumer.app = SimpleNamespace(  # type: ignore[assignment]
        flow_control=FlowControl(flow_active), topics=SimpleNamespace(acks_enabled_for=lambda topic: True)
    )
    consumer._accepting_generation = generation
    consumer._unacked_messages = set()
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._acked = defaultdict(list)
    consumer._acked_index = defaultdict(set)
    consumer._n_acked = 0
    consumer._waiting_for_ack = None
    return consumer


class ChunkMessage:
    """What the consumer's ack reads of a Faust message (hashable, as the unacknowledged set needs)."""

    def __init__(self, offset: int, generation: int) -> None:
        self.tp = TP("chunks", 0)
        self.topic = "chunks"
        self.offset = offset
        self.generation_id = generation
        self.acked = False


def chunk_message(offset: int, generation: int) -> Any:
    return ChunkMessage(offset, generation)


def test_an_acknowledgement_counts_only_under_the_current_assignment_with_the_flow_running():
    running = consumer_of_generation(3, flow_active=True)
    assert running.ack(chunk_message(7, generation=3))
    assert running._acked[TP("chunks", 0)] == [7]
    assert not running.ack(chunk_message(8, generation=2))  # fetched before the rebalance
    # A stream skips what it is handed while a recovery holds the flow, and acknowledges it
    # unprocessed: counting that would let the commit pass a record never handled.
    recovering = consumer_of_generation(3, flow_active=False)
    skipped = chunk_message(7, generation=3)
    recovering._unacked_messages.add(skipped)
    assert not recovering.ack(skipped)
    assert recovering._acked[TP("chunks", 0)] == [] and skipped not in recovering._unacked_messages


def test_a_restore_position_below_zero_or_missing_reads_the_changelog_from_its_start() -> None:
    positions = {TP("c", 0): 41, TP("c", 1): 0, TP("c", 2): -1, TP("c", 3): -2, TP("c", 4): None}
    assert seekable_offsets(positions) == {TP("c", 0): 41, TP("c", 1): 0, TP("c", 2): 0, TP("c", 3): 0, TP("c", 4): 0}


def test_the_recovery_seek_hands_the_consumer_thread_only_offsets_aiokafka_accepts() -> None:
    sought: list[dict[TP, int]] = []

    class Thread:
        async def seek_wait(self, partitions: dict[TP, int]) -> None:
            sought.append(dict(partitions))

    consumer = Consumer.__new__(Consumer)
    consumer._thread = Thread()  # type: ignore[assignment]
    asyncio.run(consumer.seek_wait({TP("c", 0): 7, TP("c", 1): -2}))
    assert sought == [{TP("c", 0): 7, TP("c", 1): 0}]


def fetching_consumer(
    monkeypatch: Any, batch: list[tuple[TP, int]], sought_while_waiting: dict[TP, int | None] | None = None
) -> Consumer:
    """transport.Consumer whose fetch (Faust's getmany) returns ``batch``, and no broker."""

    async def faust_getmany(self: Consumer, timeout: float) -> Any:
        if sought_while_waiting:
            self._seeks.record(sought_while_waiting)  # aiokafka's batch then starts at the seek
        for tp, offset in batch:
            yield tp, SimpleNamespace(tp=tp, offset=offset)

    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", faust_getmany)
    consumer = Consumer.__new__(Consumer)
    consumer._seeks = Seeks()
    consumer._read_offset = defaultdict(lambda: None)
    return consumer


def test_a_batch_fetched_before_a_seek_is_left_to_the_seek_and_the_seek_keeps_its_read_position(
    monkeypatch: Any,
) -> None:
    chunks, other = TP("chunks", 0), TP("chunks", 1)
    consumer = fetching_consumer(monkeypatch, [(chunks, 35), (chunks, 36), (other, 10), (chunks, 37), (other, 11)])

    async def drain() -> list[tuple[TP, int]]:
        handed = []
        async for tp, message in consumer.getmany(timeout=1.0):
            handed.append((tp, message.offset))
            if message.offset == 35:
                # While 35 is handed over, a recovery seeks the partition back to its commit
                # (Faust's perform_seek sets the read position); the hand-over then ends and the
                # fetcher records 35 as read.
                consumer._seeks.record({chunks: 3})
                consumer._read_offset[chunks] = 3
            consumer._read_offset[tp] = message.offset
        return handed

    assert asyncio.run(drain()) == [(chunks, 35), (other, 10), (other, 11)]
    # So the records from 3 on, fetched again, pass Faust's filter of copies already read.
    assert consumer._read_offset[chunks] == 3 and consumer._read_offset[other] == 11


def test_a_seek_made_while_the_fetch_waits_leaves_the_batch_it_brings_alone(monkeypatch: Any) -> None:
    chunks = TP("chunks", 0)
    consumer = fetching_consumer(monkeypatch, [(chunks, 1), (chunks, 2)], sought_while_waiting={chunks: 1})

    async def drain() -> list[int]:
        return [message.offset async for _, message in consumer.getmany(timeout=1.0)]

    assert asyncio.run(drain()) == [1, 2]


def test_a_seek_to_the_committed_offsets_records_the_partitions_it_moves_with_their_read_positions() -> None:
    changelog = TP("t-changelog", 0)
    committed = {TP("chunks", 0): 12, TP("chunks", 1): None, changelog: None}

    class Thread:
        async def seek_to_committed(self) -> dict[TP, int | None]:
            return committed

        async def seek_to_beginning(self, *partitions: TP) -> None:
            pass

    consumer = Consumer.__new__(Consumer)
    consumer._thread = Thread()  # type: ignore[assignment]
    consumer._seeks = Seeks()
    consumer.app = SimpleNamespace(  # type: ignore[assignment]
        tables=SimpleNamespace(changelog_topics={changelog.topic}),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
    )
    mark = consumer._seeks.mark()
    asyncio.run(consumer.seek_to_committed())
    # The chunk partitions are moved (to the commit, and back to the start); aiokafka leaves a
    # changelog without a commit where its fetch stands, so its fetched records are still wanted.
    assert [consumer._seeks.sought_since(mark, tp) for tp in committed] == [True, True, False]
    assert [consumer._seeks.position(tp) for tp in committed] == [12, None, None]
