"""The commit rule: the committed offset moves over processed records and gaps only, never past one in flight."""

from __future__ import annotations

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from transport import CommitHolds, committable_offset


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
