"""What this worker has done since it started: its Prometheus metrics and the last minute's throughput.

The agents call one function here per event (a chunk stored, a file completed...), so
instrumenting them costs one line each.  Counters live in this process only and start
from zero with it.  What the tables hold (files per status, transfers per state) and the
consumer lag are read when Prometheus scrapes, by :class:`PipelineGauges`, from a
function the worker's ``/metrics`` view gives it (``web/metrics_view.py``): so they
survive restarts and follow partitions to whichever worker owns them.

Everything is in one ``prometheus_client`` registry: these metrics, the process and
platform collectors (memory, CPU, open files, Python version) and Faust's own consumer
figures (:class:`FaustSensor`).  This module imports neither the app nor the tables'
modules, so every agent can import it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily

from tables.transfer_state import State, TransferState

# A `*_created` timestamp series beside every counter doubles the series count and no panel
# or alert of ours reads it.
disable_created_metrics()

registry = CollectorRegistry()
ProcessCollector(registry=registry)
PlatformCollector(registry=registry)

RejectionReason = Literal["malformed", "key_mismatch", "bad_hash", "stale", "corrupt", "error"]
REJECTION_REASONS: tuple[RejectionReason, ...] = ("malformed", "key_mismatch", "bad_hash", "stale", "corrupt", "error")
TRANSFER_OUTCOMES = ("valid", "failed", "invalid")
THROUGHPUT_WINDOW_SECONDS = 60

chunks_received = Counter("filestream_chunks_received_total", "Records received on the chunk topic.", registry=registry)
chunks_rejected = Counter(
    "filestream_chunks_rejected_total",
    "Chunk records rejected: malformed record, message key not the file's, payload not matching its hash, "
    "stale generation, contradicting the generation's known content (corrupt), or an error while handling it.",
    ["reason"],
    registry=registry,
)
chunks_stored = Counter(
    "filestream_chunks_stored_total", "Chunk payloads stored (duplicates not counted).", registry=registry
)
chunk_bytes_stored = Counter(
    "filestream_chunk_bytes_stored_total", "Payload bytes of the chunks stored.", registry=registry
)
files_started = Counter(
    "filestream_files_started_total",
    "File generations whose first chunk arrived (new files and new generations).",
    registry=registry,
)
files_completed = Counter(
    "filestream_files_completed_total", "Files verified, written and announced.", registry=registry
)
file_bytes_completed = Counter(
    "filestream_file_bytes_completed_total", "Bytes of the files completed.", registry=registry
)
files_failed = Counter(
    "filestream_files_failed_total",
    "Files that failed: hash or size mismatch, unsafe name, expired.",
    registry=registry,
)
file_assembly_seconds = Histogram(
    "filestream_file_assembly_seconds",
    "Seconds from a file's first chunk to its completion (verified, written and announced).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=registry,
)
transfer_outcomes = Counter(
    "filestream_transfer_outcomes_total",
    "S3 transfer attempts by outcome: valid, failed (did not reach S3), invalid (S3's checksum or size disagreed).",
    ["outcome"],
    registry=registry,
)
dead_letters = Counter(
    "filestream_dead_letters_total",
    "Rejected chunk records sent to the dead-letter topic (FILESTREAM_DEAD_LETTER_TOPIC), by rejection reason.",
    ["reason"],
    registry=registry,
)
transfers_given_up = Counter(
    "filestream_transfers_given_up_total", "S3 transfers that failed for good: no retries left.", registry=registry
)


def memory_limit_bytes(
    proc_cgroup: Path = Path("/proc/self/cgroup"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> int:
    """The most memory this process may have: the machine's RAM, or a lower cgroup limit on its cgroup or an
    ancestor (systemd's MemoryMax=, a container's limit), cgroup v2 (memory.max) or v1 (memory.limit_in_bytes)."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    try:
        memberships = proc_cgroup.read_text().splitlines()
    except OSError:  # not Linux: the RAM it is
        memberships = []
    for line in memberships:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            mount, limit_file = cgroup_root, "memory.max"
        elif "memory" in controllers.split(","):
            mount, limit_file = cgroup_root / "memory", "memory.limit_in_bytes"
        else:
            continue
        cgroup = mount / path.lstrip("/")
        for directory in (cgroup, *cgroup.parents):
            if not directory.is_relative_to(mount):
                break
            try:
                text = (directory / limit_file).read_text().strip()
            except OSError:
                continue
            if text.isdigit():  # "max": no limit there
                limits.append(int(text))
    return min(limits)


memory_limit = Gauge(
    "filestream_memory_limit_bytes",
    "The most memory this worker may have: the machine's RAM, or a lower cgroup limit (systemd MemoryMax=, "
    "a container's limit).",
    registry=registry,
)
memory_limit.set_function(memory_limit_bytes)

# Every label value exists from the start, so a rate over a reason that never happened is 0, not absent.
for _reason in REJECTION_REASONS:
    chunks_rejected.labels(reason=_reason)
    dead_letters.labels(reason=_reason)
for _outcome in TRANSFER_OUTCOMES:
    transfer_outcomes.labels(outcome=_outcome)


@dataclass(frozen=True)
class PipelineReadings:
    """The worker's state when scraped: ``None`` for a table that is restoring (no value beats a wrong one)."""

    files: Mapping[str, int] | None = None
    transfers: Mapping[str, int] | None = None
    consumer_lag: Sequence[tuple[str, int, int]] = field(default_factory=tuple)  # topic, partition, lag


class PipelineGauges:
    """``filestream_files``, ``filestream_transfers`` and ``filestream_consumer_lag``, read at every scrape."""

    def __init__(self, read: Callable[[], PipelineReadings]) -> None:
        self._read = read

    def describe(self) -> list[Metric]:
        return self._families(PipelineReadings())

    def collect(self) -> list[Metric]:
        return self._families(self._read())

    @staticmethod
    def _families(readings: PipelineReadings) -> list[Metric]:
        files = GaugeMetricFamily(
            "filestream_files",
            "Files of this worker's partitions by status: assembling, completed, failed.",
            labels=["status"],
        )
        for status, count in (readings.files or {}).items():
            files.add_metric([status], count)
        transfers = GaugeMetricFamily(
            "filestream_transfers", "S3 transfer records of this worker's partitions by state.", labels=["state"]
        )
        for state, count in (readings.transfers or {}).items():
            transfers.add_metric([state], count)
        lag = GaugeMetricFamily(
            "filestream_consumer_lag",
            "Records on the partition not yet processed and committed: high watermark minus committed offset.",
            labels=["topic", "partition"],
        )
        for topic, partition, records in sorted(readings.consumer_lag):
            lag.add_metric([topic, str(partition)], records)
        return [files, transfers, lag]


class FaustSensor(PrometheusMonitor):
    """Faust's Prometheus sensor (``faust_*``: rebalances, commit latency, messages per topic, table operations).

    faust-streaming 0.15.3 observes each rebalance and web request latency as the time since
    the moment the rebalance or request *ended* (``ms_since(state["time_end"])``), about 0 ms
    every time; these overrides observe the latency Faust's base monitor measured from the start.

    The hooks Faust calls for every record, event, send and table read look up their labelled
    series once and keep it (``labels()`` takes a lock and builds its key each time, and the
    stream's label goes through a regular expression: about 10 % of the event loop's time
    draining a backlog, bench.drain_bench --profile).  The series and their values are Faust's.
    """

    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics, **kwargs)
        self._series: dict[tuple[Any, Any], Any] = {}

    def _labelled(self, metric: Any, key: Any, labels: Callable[[], tuple[object, ...]]) -> Any:
        series = self._series.get((metric, key))
        if series is None:
            series = self._series[(metric, key)] = metric.labels(*labels())
        return series

    def _clear_partition_related_metrics(self) -> None:
        super()._clear_partition_related_metrics()
        self._series.clear()  # Faust removed the topic and partition series: one kept here would count unseen

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        self._labelled(metrics.messages_received_per_topics, tp.topic, lambda: (tp.topic,)).inc()
        self._labelled(metrics.messages_received_per_topics_partition, tp, lambda: tp).set(offset)

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict | None:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        self._labelled(
            metrics.total_events_per_stream, stream, lambda: (f"stream.{self._stream_label(stream)}.events",)
        ).inc()
        return state

    def on_table_get(self, table: Any, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table_operations(table, self.KEYS_RETRIEVED).inc()

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table_operations(table, self.KEYS_UPDATED).inc()

    def on_table_del(self, table: Any, key: Any) -> None:
        Monitor.on_table_del(self, table, key)
        self._table_operations(table, self.KEYS_DELETED).inc()

    def _table_operations(self, table: Any, operation: str) -> Any:
        return self._labelled(
            self._metrics.table_operations, (table.name, operation), lambda: (f"table.{table.name}", operation)
        )

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> Any:
        self._labelled(self._metrics.topic_messages_sent, topic, lambda: (f"topic.{topic}",)).inc()
        return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        Monitor.track_tp_end_offset(self, tp, offset)
        self._labelled(self._metrics.topic_partition_end_offset, tp, lambda: tp).set(offset)

    def on_rebalance_return(self, app: Any, state: dict) -> None:
        Monitor.on_rebalance_return(self, app, state)
        self._metrics.total_rebalances.dec()
        self._metrics.total_rebalances_recovering.inc()
        self._metrics.rebalance_done_consumer_latency.observe(self.secs_to_ms(state["latency_return"]))

    def on_rebalance_end(self, app: Any, state: dict) -> None:
        Monitor.on_rebalance_end(self, app, state)
        self._clear_partition_related_metrics()
        self._metrics.total_rebalances_recovering.dec()
        self._metrics.rebalance_done_latency.observe(self.secs_to_ms(state["latency_end"]))

    def on_web_request_end(self, app: Any, request: Any, response: Any, state: dict, *, view: Any = None) -> None:
        Monitor.on_web_request_end(self, app, request, response, state, view=view)
        self._metrics.http_status_codes.labels(status_code=int(state["status_code"])).inc()
        self._metrics.http_latency.observe(self.secs_to_ms(state["latency_end"]))


# Faust's metrics, named faust_* whatever the app id, in the same registry; the app installs
# the sensor that updates them (web/metrics_view.py).
faust_metrics = FaustMetrics.create(registry, "faust")


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
    chunks_rejected.labels(reason=reason).inc()


def dead_lettered(reason: str) -> None:
    """``reason`` as the dead-letter header has it: ``"<rejection reason>: <detail>"``."""
    category = reason.split(":", 1)[0]
    dead_letters.labels(reason=category if category in REJECTION_REASONS else "error").inc()


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
        transfer_outcomes.labels(outcome=outcome).inc()
    if transfer.terminal and transfer.state is not State.VALID:
        transfers_given_up.inc()


def count(counter: Counter, **labels: str) -> int:
    """A counter's value (of the series with these labels), as a scrape would read it."""
    samples = (sample for family in counter.collect() for sample in family.samples)
    return next((int(s.value) for s in samples if s.name.endswith("_total") and s.labels == labels), 0)


def counters() -> dict[str, object]:
    """The counters as the summary view shows them: whole numbers."""
    return {
        "chunks_received": count(chunks_received),
        "chunks_stored": count(chunks_stored),
        "bytes_stored": count(chunk_bytes_stored),
        "files_started": count(files_started),
        "files_completed": count(files_completed),
        "bytes_completed": count(file_bytes_completed),
        "files_failed": count(files_failed),
        "transfers_given_up": count(transfers_given_up),
        "chunks_rejected": {reason: count(chunks_rejected, reason=reason) for reason in REJECTION_REASONS},
        "dead_letters": sum(count(dead_letters, reason=reason) for reason in REJECTION_REASONS),
    }
