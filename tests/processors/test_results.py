"""Recording outcomes: idempotence by file version, attempts, and races with other runs."""

from __future__ import annotations

import pytest

from models.events import COMPLETED, FileEvent
from processors.results import ProcessorResult, ResultStatus, RunDecision, decide_run, record_outcome, result_key


def event(generation: int | None = 5, file_hash: str = "aa" * 32) -> FileEvent:
    return FileEvent(
        status=COMPLETED,
        source="lab",
        path="run/a.csv",
        generation=generation,
        file_hash=file_hash,
        file_size=10,
        chunk_count=1,
        first_chunk_at=1.0,
        finished_at=2.0,
        output_path="/out/lab/run/a.csv",
    )


UNCHANGED = object()  # the run was decided on the record that is still current


def record(current, the_event, status=ResultStatus.PROCESSED, decided_on=UNCHANGED, now=100.0):
    return record_outcome(
        current,
        current if decided_on is UNCHANGED else decided_on,
        processor="p",
        event=the_event,
        partition=3,
        status=status,
        reason=None if status is ResultStatus.PROCESSED else "why",
        now=now,
    )


def test_a_first_outcome_is_recorded_with_what_a_rerun_needs():
    result = record(None, event(), ResultStatus.FAILED)
    assert (result.processor, result.file, result.generation) == ("p", "lab/run/a.csv", 5)
    assert result.status is ResultStatus.FAILED
    assert (result.reason, result.attempts, result.updated_at, result.partition) == ("why", 1, 100.0, 3)
    assert FileEvent(**result.event) == event()
    assert ProcessorResult.loads(result.dumps()) == result
    assert result.summary()["status"] == "failed" and "event" not in result.summary()


@pytest.mark.parametrize("status", list(ResultStatus))
def test_a_recorded_version_is_not_run_again_whatever_its_outcome(status):
    recorded = record(None, event(), status)
    assert decide_run(recorded, event()) is RunDecision.ALREADY_RECORDED


def test_new_versions_run_and_older_generations_do_not():
    recorded = record(None, event(generation=5))
    assert decide_run(None, event()) is RunDecision.RUN
    assert decide_run(recorded, event(generation=6, file_hash="bb" * 32)) is RunDecision.RUN
    assert decide_run(recorded, event(generation=4, file_hash="bb" * 32)) is RunDecision.STALE
    unnumbered = record(None, event(generation=None))
    assert decide_run(unnumbered, event(generation=None, file_hash="cc" * 32)) is RunDecision.RUN
    assert decide_run(unnumbered, event(generation=None)) is RunDecision.ALREADY_RECORDED


def test_a_rerun_of_the_same_version_counts_attempts_and_a_new_version_starts_over():
    failed = record(None, event(), ResultStatus.FAILED)
    rerun = record(failed, event(), ResultStatus.PROCESSED, now=200.0)
    assert (rerun.status, rerun.reason, rerun.attempts, rerun.updated_at) == (ResultStatus.PROCESSED, None, 2, 200.0)
    newer = record(rerun, event(generation=6, file_hash="bb" * 32))
    assert (newer.generation, newer.attempts) == (6, 1)


def test_a_newer_generation_recorded_while_an_older_one_ran_is_kept():
    failed_v5 = record(None, event(generation=5), ResultStatus.FAILED)
    processed_v6 = record(failed_v5, event(generation=6, file_hash="bb" * 32))
    # A re-run of the failed v5, decided on before v6 was recorded, finishes after it.
    assert record(processed_v6, event(generation=5), decided_on=failed_v5) is None


def test_without_generations_the_record_made_meanwhile_wins_and_an_unchanged_one_is_replaced():
    first = record(None, event(generation=None, file_hash="aa" * 32))
    second = record(first, event(generation=None, file_hash="bb" * 32), decided_on=first)
    assert second is not None and second.file_hash == "bb" * 32
    # A run of the first version, decided on the first record, ends after the second was recorded.
    assert record(second, event(generation=None, file_hash="aa" * 32), decided_on=first) is None


def test_result_keys_separate_processors_and_files():
    assert result_key("p", b"lab/a") == b"p\x00lab/a"
    assert result_key("p", b"lab/a") != result_key("p2", b"lab/a")
