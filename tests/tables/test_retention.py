import dataclasses

import pytest

from processors.results import ProcessorResult, ResultStatus
from tables.assembly import AssemblyState, Status
from tables.retention import DAY, SWEEP_INTERVAL, expired, file_history_expired, sweep_due, sweep_interval
from tables.transfer_record import TransferRecord
from tables.transfer_state import State, TransferState

NOW = 1_800_000_000.0


def result(age_days: float) -> ProcessorResult:
    return ProcessorResult(
        processor="metadata",
        file="src/a.csv",
        generation=1,
        file_hash="h",
        status=ResultStatus.PROCESSED,
        reason=None,
        attempts=1,
        updated_at=NOW - age_days * DAY,
        partition=0,
        event={},
    )


@pytest.mark.parametrize(
    "age_days, retention_days, gone",
    [
        (91, 90, True),
        (89.9, 90, False),
        (90, 90, False),  # exactly the retention: kept
        (10_000, 0, False),  # 0: forever
        (0.6, 0.5, True),
        (0.4, 0.5, False),
    ],
)
def test_results_older_than_the_retention_expire(age_days, retention_days, gone):
    assert expired(result(age_days), NOW, retention_days) is gone


def test_a_partition_is_swept_at_its_first_tick_then_hourly():
    assert sweep_due(None, NOW, 90)
    assert not sweep_due(NOW - SWEEP_INTERVAL + 1, NOW, 90)
    assert sweep_due(NOW - SWEEP_INTERVAL, NOW, 90)


def test_never_swept_when_kept_forever():
    assert not sweep_due(None, NOW, 0)


def test_a_short_retention_is_swept_four_times_per_retention():
    assert sweep_interval(1 / 24) == pytest.approx(900)
    assert sweep_interval(90) == SWEEP_INTERVAL


def finished(age_days: float, status: Status = Status.COMPLETED) -> AssemblyState:
    at = NOW - age_days * DAY
    return AssemblyState(
        generation=1,
        file_hash="h",
        file_size=10,
        chunk_count=1,
        partition=0,
        first_chunk_at=at - 1,
        last_chunk_at=at - 1,
        status=status,
        finished_at=None if status is Status.ASSEMBLING else at,
    )


def transfer(age_days: float, state: State = State.VALID, **changes) -> TransferRecord:
    new = TransferState.new("src/a.csv", generation=1, file_hash="h", size=10, max_retries=3, now=0)
    moved = dataclasses.replace(new, state=state, updated_at=NOW - age_days * DAY, **changes)
    return TransferRecord(moved, partition=0, payload_epoch=0, chunk_count=1)


@pytest.mark.parametrize(
    "state, record, gone",
    [
        (finished(91), transfer(91), True),
        (finished(91, Status.FAILED), None, True),  # failed before any transfer record
        (finished(91, Status.FAILED), transfer(91), True),  # the output failed, S3 has it
        (finished(91), None, True),  # S3 off
        (finished(90), transfer(91), False),  # exactly the retention: kept
        (finished(91), transfer(90), False),
        (finished(91), transfer(10), False),  # re-verified lately
        (finished(10), transfer(91), False),
        (finished(91, Status.ASSEMBLING), None, False),  # in flight, whatever its age
        (finished(91), transfer(91, State.FAILED, retries=3), True),  # given up
        (finished(91), transfer(91, State.FAILED, retries=1), False),  # a retry ahead
        (finished(91), transfer(91, State.INVALID, invalid_retried=True), True),  # invalid after its fresh upload
        (finished(91), transfer(91, State.INVALID), False),  # its fresh upload ahead
        (finished(91), transfer(91, State.READY), False),
        (finished(91), transfer(91, State.PENDING), False),
        (finished(91), transfer(91, State.TRANSFERRING), False),
        (finished(91), transfer(91, State.DONE), False),
    ],
)
def test_a_finished_files_history_expires_only_once_everything_about_it_settled_long_ago(state, record, gone):
    assert file_history_expired(state, record, NOW, 90) is gone


def test_a_files_history_is_kept_forever_with_zero():
    assert not file_history_expired(finished(10_000), transfer(10_000), NOW, 0)


def test_a_finished_state_without_a_finish_time_is_dated_by_its_last_chunk():
    old, recent = finished(91), finished(91)
    old.finished_at = recent.finished_at = None
    recent.last_chunk_at = NOW - 10 * DAY
    assert file_history_expired(old, None, NOW, 90)
    assert not file_history_expired(recent, None, NOW, 90)


def test_a_short_history_retention_counts_in_fractions_of_a_day():
    assert file_history_expired(finished(0.0002), transfer(0.0002), NOW, 0.0001)
    assert not file_history_expired(finished(0.0002), transfer(0.00005), NOW, 0.0001)
