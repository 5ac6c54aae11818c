"""How long processor outcomes are kept, and when a partition's are swept, as plain code.

One :class:`~processors.results.ProcessorResult` per processor and file ever completed
would grow the processor-results table (its RocksDB, its changelog, a fresh worker's
restore) with the whole history.  Results older than ``FILESTREAM_PROCESSOR_RESULTS_RETENTION``
days are deleted by the owner of their partition; 0 keeps them forever.
"""

from __future__ import annotations

from processors.results import ProcessorResult

DAY = 86_400.0
SWEEP_INTERVAL = 3600.0  # seconds between two sweeps of one partition, at most


def expired(result: ProcessorResult, now: float, retention_days: float) -> bool:
    """Whether ``result`` was recorded more than ``retention_days`` ago (never, with 0)."""
    return retention_days > 0 and result.updated_at < now - retention_days * DAY


def sweep_interval(retention_days: float) -> float:
    """Seconds between two sweeps of a partition: hourly, or a quarter of a retention shorter than four hours."""
    return min(SWEEP_INTERVAL, retention_days * DAY / 4)


def sweep_due(last_swept: float | None, now: float, retention_days: float) -> bool:
    """Whether a partition last swept at ``last_swept`` (None: never, by this worker) is due again."""
    if retention_days <= 0:
        return False
    return last_swept is None or now - last_swept >= sweep_interval(retention_days)
