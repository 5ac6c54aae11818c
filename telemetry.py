"""What this worker has done since it started: its Prometheus counters and the last minute's throughput.

The agents call one function here per event (a chunk stored, a file completed...), so
instrumenting them costs one line each.  Values live in this process only and start
from zero with it; what the tables hold (files per status, transfers per state) is
counted from the tables when asked (``web/census.py``), so it survives restarts and
follows partitions to whichever worker owns them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from metrics import Counter, Gauge, Histogram, Registry
from tables.transfer_state import State, TransferState

registry = Registry()

RejectionReason = Literal["malformed", "key_mismatch", "bad_hash", "stale", "corrupt"]
REJECTION_REASONS: tuple[RejectionReason, ...] = ("malformed", "key_mismatch", "bad_hash", "stale", "corrupt")
TRANSFER_OUTCOMES = ("valid", "failed", "invalid")
THROUGHPUT_WINDOW_SECONDS = 60

chunks_received = Counter(registry, "filestream_chunks_received_total", "Records received on the chunk topic.")
chunks_rejected = Counter(
    registry,
    "filestream_chunks_rejected_total",
    "Chunk records rejected: malformed record, message key not the file's, payload not matching its hash, "
    "stale generation, or contradicting the generation's known content (corrupt).",
    labels=("reason",),
)
chunks_stored = Counter(registry, "filestream_chunks_stored_total", "Chunk payloads stored (duplicates not counted).")
chunk_bytes_stored = Counter(registry, "filestream_chunk_bytes_stored_total", "Payload bytes of the chunks stored.")
files_started = Counter(
    registry,
    "filestream_files_started_total",
    "File generations whose first chunk arrived (new files and new generations).",
)
files_completed = Counter(registry, "filestream_files_completed_total", "Files verified, written and announced.")
file_bytes_completed = Counter(registry, "filestream_file_bytes_completed_total", "Bytes of the files completed.")
files_failed = Counter(
    registry, "filestream_files_failed_total", "Files that failed: hash or size mismatch, unsafe name, expired."
)
file_assembly_seconds = Histogram(
    registry,
    "filestream_file_assembly_seconds",
    "Seconds from a file's first chunk to its completion (verified, written and announced).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
transfer_outcomes = Counter(
    registry,
    "filestream_transfer_outcomes_total",
    "S3 transfer attempts by outcome: valid, failed (did not reach S3), invalid (S3's checksum or size disagreed).",
    labels=("outcome",),
)
transfers_given_up = Counter(
    registry, "filestream_transfers_given_up_total", "S3 transfers that failed for good: no retries left."
)
# Set from the tables and the consumer on every scrape (web/metrics_view.py).
files_by_status = Gauge(
    registry,
    "filestream_files",
    "Files of this worker's partitions by status: assembling, completed, failed.",
    labels=("status",),
)
transfers_by_state = Gauge(
    registry, "filestream_transfers", "S3 transfer records of this worker's partitions by state.", labels=("state",)
)
consumer_lag = Gauge(
    registry,
    "filestream_consumer_lag",
    "Records on the partition not yet processed and committed: high watermark minus committed offset.",
    labels=("topic", "partition"),
)

for _reason in REJECTION_REASONS:
    chunks_rejected.inc(0, reason=_reason)
for _outcome in TRANSFER_OUTCOMES:
    transfer_outcomes.inc(0, outcome=_outcome)


class RateWindow:
    """Amounts added over the last ``seconds``, in one-second buckets, as a rate per second.

    Before the window has been open for ``seconds``, the rate is over the time it has
    been open, so a fresh worker does not report a tenth of its real throughput.
    """

    def __init__(self, seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._opened_at = clock()
        self._buckets: deque[list[float]] = deque()  # [whole second, amount], oldest first

    def add(self, amount: float) -> None:
        second = int(self._clock())
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += amount
        else:
            self._buckets.append([second, amount])
        self._expire(second)

    def per_second(self) -> float:
        now = self._clock()
        self._expire(int(now))
        elapsed = min(float(self.seconds), max(1.0, now - self._opened_at))
        return sum(amount for _, amount in self._buckets) / elapsed

    def _expire(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.seconds:
            self._buckets.popleft()


bytes_throughput = RateWindow(THROUGHPUT_WINDOW_SECONDS)
files_throughput = RateWindow(THROUGHPUT_WINDOW_SECONDS)
started_at = time.time()


def chunk_received() -> None:
    chunks_received.inc()


def chunk_rejected(reason: RejectionReason) -> None:
    chunks_rejected.inc(reason=reason)


def chunk_stored(size: int) -> None:
    chunks_stored.inc()
    chunk_bytes_stored.inc(size)
    bytes_throughput.add(size)


def file_started() -> None:
    files_started.inc()


def file_completed(size: int, seconds_since_first_chunk: float) -> None:
    files_completed.inc()
    file_bytes_completed.inc(size)
    file_assembly_seconds.observe(seconds_since_first_chunk)
    files_throughput.add(1)


def file_failed() -> None:
    files_failed.inc()


def transfer_recorded(transfer: TransferState) -> None:
    """Every transfer record the S3 agent writes passes here; only outcomes count."""
    outcome = transfer.state.value
    if outcome in TRANSFER_OUTCOMES:
        transfer_outcomes.inc(outcome=outcome)
    if transfer.terminal and transfer.state is not State.VALID:
        transfers_given_up.inc()


def counters() -> dict[str, object]:
    """The counters as the summary view shows them: whole numbers."""
    return {
        "chunks_received": int(chunks_received.value()),
        "chunks_stored": int(chunks_stored.value()),
        "bytes_stored": int(chunk_bytes_stored.value()),
        "files_started": int(files_started.value()),
        "files_completed": int(files_completed.value()),
        "bytes_completed": int(file_bytes_completed.value()),
        "files_failed": int(files_failed.value()),
        "transfers_given_up": int(transfers_given_up.value()),
        "chunks_rejected": {reason: int(chunks_rejected.value(reason=reason)) for reason in REJECTION_REASONS},
    }
