from collections.abc import Callable

import pytest

from tables.transfer_state import (
    IllegalTransition,
    State,
    TransferAction,
    TransferState,
    backoff_delay,
    decide,
)
from tests.tables.backoff import BACKOFF

FILE_ID = "lab-1/runs/2024/scan.h5"
HASH = "a" * 64
OTHER_HASH = "b" * 64


def fresh(generation: int | None = 3, max_retries: int = 2) -> TransferState:
    return TransferState.new(
        FILE_ID, generation=generation, file_hash=HASH, size=1234, max_retries=max_retries, now=100.0
    )


def transferring(**kwargs) -> TransferState:
    return fresh(**kwargs).queue(now=101.0).start_transfer(now=102.0)


def done() -> TransferState:
    return transferring().transferred(checksum="yH2GHg==", now=103.0)


def failed() -> TransferState:
    return transferring().fail("connection refused", now=110.0, **BACKOFF)


def exhausted() -> TransferState:
    state = transferring(max_retries=1).fail("refused", now=110.0, **BACKOFF)
    assert state.next_attempt_at is not None
    state = state.retry(now=state.next_attempt_at).start_transfer(now=200.0)
    return state.fail("refused again", now=201.0, **BACKOFF)


def invalid() -> TransferState:
    return done().invalidated("size 1000, expected 1234", now=104.0)


def invalid_twice() -> TransferState:
    state = invalid().retry_invalid(now=105.0).start_transfer(now=106.0)
    return state.transferred(checksum="yH2GHg==", now=107.0).invalidated("checksum differs", now=108.0)


STATES: dict[str, Callable[[], TransferState]] = {
    "ready": fresh,
    "pending": lambda: fresh().queue(now=101.0),
    "transferring": transferring,
    "done": done,
    "valid": lambda: done().validated(now=104.0),
    "invalid": invalid,
    "invalid-twice": invalid_twice,
    "failed": failed,
    "failed-exhausted": exhausted,
}

TRANSITIONS: dict[str, Callable[[TransferState], TransferState]] = {
    "queue": lambda s: s.queue(now=1000.0),
    "start_transfer": lambda s: s.start_transfer(now=1000.0),
    "transferred": lambda s: s.transferred(checksum="yH2GHg==", now=1000.0),
    "validated": lambda s: s.validated(now=1000.0),
    "invalidated": lambda s: s.invalidated("mismatch", now=1000.0),
    "fail": lambda s: s.fail("timeout", now=1000.0, **BACKOFF),
    "retry": lambda s: s.retry(now=1000.0),
    "retry_invalid": lambda s: s.retry_invalid(now=1000.0),
}

ALLOWED = {
    ("ready", "queue"): State.PENDING,
    ("pending", "start_transfer"): State.TRANSFERRING,
    ("transferring", "transferred"): State.DONE,
    ("transferring", "fail"): State.FAILED,
    ("done", "validated"): State.VALID,
    ("done", "invalidated"): State.INVALID,
    ("failed", "retry"): State.PENDING,
    ("invalid", "retry_invalid"): State.PENDING,
}


@pytest.mark.parametrize("state_name", STATES)
@pytest.mark.parametrize("transition_name", TRANSITIONS)
def test_transition_matrix(state_name, transition_name):
    """Every (state, transition) pair: the allowed ones land in their state, all others are refused."""
    state = STATES[state_name]()
    transition = TRANSITIONS[transition_name]
    expected = ALLOWED.get((state_name, transition_name))
    if expected is None:
        with pytest.raises(IllegalTransition, match=FILE_ID):
            transition(state)
    else:
        moved = transition(state)
        assert moved.state is expected
        assert moved.updated_at == 1000.0
        assert state.state.value == state_name.split("-")[0]  # records are immutable


def test_happy_path_records_checksum_and_clears_the_message():
    state = fresh()
    assert (state.state, state.retries, state.updated_at) == (State.READY, 0, 100.0)
    state = state.queue(now=101.0).start_transfer(now=102.0).transferred(checksum="yH2GHg==", now=103.0)
    assert (state.state, state.checksum) == (State.DONE, "yH2GHg==")
    state = state.validated(now=104.0)
    assert (state.state, state.checksum, state.message, state.terminal) == (State.VALID, "yH2GHg==", None, True)


def test_failure_schedules_an_exponential_backoff():
    state = failed()
    assert state.message == "connection refused"
    assert state.next_attempt_at == 110.0 + 2.0  # base * 2**0
    assert not state.terminal
    assert not state.due(111.9)
    assert state.due(112.0)


def test_retry_counts_and_the_backoff_doubles():
    state = failed().retry(now=112.0)
    assert (state.state, state.retries, state.next_attempt_at) == (State.PENDING, 1, None)
    assert state.message == "retry 1 of 2 after: connection refused"
    state = state.start_transfer(now=113.0).fail("reset by peer", now=120.0, **BACKOFF)
    assert state.next_attempt_at == 120.0 + 4.0  # base * 2**1


def test_retry_before_the_backoff_ends_is_refused():
    with pytest.raises(IllegalTransition, match="backoff"):
        failed().retry(now=111.0)


def test_failure_with_no_retries_left_is_terminal():
    state = exhausted()
    assert (state.state, state.retries, state.next_attempt_at) == (State.FAILED, 1, None)
    assert state.terminal
    assert not state.due(10**9)
    with pytest.raises(IllegalTransition, match="all 1 retries used"):
        state.retry(now=10**9)


def test_zero_max_retries_fails_for_good_at_once():
    state = transferring(max_retries=0).fail("refused", now=110.0, **BACKOFF)
    assert state.terminal


def test_invalid_gets_one_fresh_upload_then_is_terminal():
    state = invalid()
    assert not state.terminal
    retried = state.retry_invalid(now=105.0)
    assert (retried.state, retried.invalid_retried, retried.checksum) == (State.PENDING, True, None)
    assert retried.message == "fresh upload after invalid: size 1000, expected 1234"
    second = invalid_twice()
    assert second.terminal
    with pytest.raises(IllegalTransition, match="one fresh upload"):
        second.retry_invalid(now=200.0)


@pytest.mark.parametrize("retries, expected", [(0, 2.0), (1, 4.0), (4, 32.0), (5, 60.0), (30, 60.0)])
def test_backoff_delay_is_capped(retries, expected):
    assert backoff_delay(retries, base=2.0, cap=60.0) == expected


@pytest.mark.parametrize("state_name", STATES)
def test_round_trips_through_dict_and_orjson(state_name):
    state = STATES[state_name]()
    assert TransferState.from_dict(state.to_dict()) == state
    assert TransferState.loads(state.dumps()) == state
    assert state.to_dict()["state"] == state.state.value


def test_a_file_never_seen_starts():
    assert decide(None, file_id=FILE_ID, generation=3, file_hash=HASH).action is TransferAction.START


@pytest.mark.parametrize("state_name", STATES)
def test_the_same_generation_again_is_nothing_to_do_in_every_state(state_name):
    decision = decide(STATES[state_name](), file_id=FILE_ID, generation=3, file_hash=HASH)
    assert decision.action is TransferAction.NOTHING_TO_DO
    assert decision.reason.startswith("already ")


def test_nothing_to_do_says_why():
    valid = STATES["valid"]()
    assert decide(valid, file_id=FILE_ID, generation=3, file_hash=HASH).reason == "already valid"
    assert "for good: refused again" in decide(exhausted(), file_id=FILE_ID, generation=3, file_hash=HASH).reason


def test_a_newer_generation_supersedes_and_an_older_one_is_stale():
    valid = STATES["valid"]()
    newer = decide(valid, file_id=FILE_ID, generation=4, file_hash=OTHER_HASH)
    assert newer.action is TransferAction.SUPERSEDE
    assert newer.reason == "generation 4 supersedes 3"
    older = decide(valid, file_id=FILE_ID, generation=2, file_hash=OTHER_HASH)
    assert older.action is TransferAction.STALE
    assert "older" in older.reason


def test_an_older_generation_never_replaces_one_in_progress():
    assert decide(transferring(), file_id=FILE_ID, generation=1, file_hash=HASH).action is TransferAction.STALE


def test_same_generation_with_other_content_keeps_the_recorded_one():
    decision = decide(done(), file_id=FILE_ID, generation=3, file_hash=OTHER_HASH)
    assert decision.action is TransferAction.NOTHING_TO_DO
    assert "different content" in decision.reason


@pytest.mark.parametrize("recorded, incoming", [(None, None), (3, None), (None, 3)])
def test_without_generation_numbers_new_content_supersedes(recorded, incoming):
    existing = fresh(generation=recorded)
    new_content = decide(existing, file_id=FILE_ID, generation=incoming, file_hash=OTHER_HASH)
    assert new_content.action is TransferAction.SUPERSEDE
    same_content = decide(existing, file_id=FILE_ID, generation=incoming, file_hash=HASH)
    assert same_content.action is TransferAction.NOTHING_TO_DO


def test_a_record_of_another_file_is_a_programming_error():
    with pytest.raises(ValueError, match="consulted for"):
        decide(fresh(), file_id="lab-1/other.h5", generation=3, file_hash=HASH)
