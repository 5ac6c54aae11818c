"""How long processor outcomes and finished files' history are kept, and when a partition's are swept, as plain code.

One :class:`~processors.results.ProcessorResult` per processor and file ever completed,
and one assembly state and transfer record per file ever received, would grow those tables
(their RocksDB, their changelogs, a fresh worker's restore and memory) with the whole
history.  Results older than ``FILESTREAM_PROCESSOR_RESULTS_RETENTION`` days, and finished
files whose assembly and transfer both settled more than ``FILESTREAM_FILE_HISTORY_RETENTION``
days ago, are deleted by the owner of their partition; 0 keeps them forever.
"""

from __future__ import annotations

from processors.results import ProcessorResult
from tables.assembly import AssemblyState, Status
from tables.census import last_activity
from tables.transfer_record import TransferRecord

DAY = 86_400.0
SWEEP_INTERVAL = 3600.0  # seconds between two sweeps of one partition, at most


def expired(result: ProcessorResult, now: float, retention_days: float) -> bool:
    """Whether ``result`` was recorded more than ``retention_days`` ago (never, with 0)."""
    return retention_days > 0 and result.updated_at < now - retention_days * DAY


def file_history_expired(
    state: AssemblyState, record: TransferRecord | None, now: float, retention_days: float
) -> bool:
    """Whether a file's assembly state and transfer record (None: it has none) may both be deleted.

    Only a finished file (completed or failed) whose transfer, if any, is settled for good,
    and only once the finish and the transfer's last move are both older than the retention:
    a file still assembling, or a transfer with work ahead (a retry, a fresh upload), needs
    its entries, however old.
    """
    if retention_days <= 0 or state.status is Status.ASSEMBLING:
        return False
    cutoff = now - retention_days * DAY
    # last_activity: states stored before ``finished_at`` existed are dated by their last chunk.
    if last_activity(state) >= cutoff:
        return False
    return record is None or (record.transfer.terminal and record.transfer.updated_at < cutoff)


def sweep_interval(retention_days: float) -> float:
    """Seconds between two sweeps of a partition: hourly, or a quarter of a retention shorter than four hours."""
    return min(SWEEP_INTERVAL, retention_days * DAY / 4)


def sweep_due(last_swept: float | None, now: float, retention_days: float) -> bool:
    """Whether a partition last swept at ``last_swept`` (None: never, by this worker) is due again."""
    if retention_days <= 0:
        return False
    return last_swept is None or now - last_swept >= sweep_interval(retention_days)
