import pytest

from processors.results import ProcessorResult, ResultStatus
from tables.retention import DAY, SWEEP_INTERVAL, expired, sweep_due, sweep_interval

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
