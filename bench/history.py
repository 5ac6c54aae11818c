"""How a worker's cost grows with history: restore, memory, RocksDB size, summary and dashboard latency.

A facility keeps one entry per file it ever received in the assembly, transfer and
processor-result tables.  This benchmark writes such a history straight into the tables'
changelog topics (the exact values the tables store, each on the partition the app puts
its file on: the Kafka default partitioner's murmur2 of the file key), with kcat, instead
of moving a million files through the pipeline, then measures on an embedded Apache Kafka:

- a fresh worker on an empty data dir: seconds until it is ready (every table restored),
  against the same worker on an empty pipeline, its peak RSS, its RocksDB size on disk;
- the summary view (``?scope=worker``) and the dashboard's data (``/filestream/summary/``,
  which the dashboard page asks every 2 s): the first request (the census built by one scan
  of each partition) and the median and 95th percentile of the next ``--requests``;
- a takeover: two workers, one stopped, until the other is ready with every partition, with
  ``FILESTREAM_STANDBY_REPLICAS`` 0 (it restores the partitions from their changelogs) and 1
  (it kept them current as a standby, and restores only what it missed).

    .venv/bin/python -m bench.history --files 1000000 --partitions 8
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import BENCH_VAR, bench_env, bench_stack, format_table, fresh_dir, load_average, process_stats
from devstack.testing import bootstrap_servers
from devstack.worker import Worker
from errors import FilestreamError
from models.events import COMPLETED, FileEvent
from models.identity import file_partition
from processors.results import ProcessorResult, ResultStatus, result_key
from tables.assembly import AssemblyState, Status
from tables.transfer_record import TransferRecord
from tables.transfer_state import State, TransferState

log = logging.getLogger("bench")

TABLES = ("assemblies", "transfers", "processor-results")
SOURCE = "lab"
DAY = 86_400.0
HISTORY_DAYS = 60  # completions spread over the last 60 days: the default retention (90) keeps them all
FAILED_EVERY = 1000  # one file in a thousand failed its hash check: no transfer, no processor result
READY_TIMEOUT = 3600.0


class HistoryError(FilestreamError):
    """The history could not be written (no kcat, a failed kcat run)."""


def history_entries(
    files: int, partitions: int, now: float, days: float = HISTORY_DAYS
) -> Iterator[tuple[int, dict[str, tuple[bytes, bytes]]]]:
    """Per file, its partition and its (key, value) per table, completed ``days`` ago at most."""
    for number in range(files):
        path = f"history/{number // 1000:04d}/{number:07d}.dat"
        file_id = f"{SOURCE}/{path}"
        key = file_id.encode()
        partition = file_partition(key, partitions)
        finished = now - days * DAY * (files - number) / files
        generation = int(finished * 1e6) - 1
        file_hash = f"{number:064x}"
        size = 4096 + number % 65536
        failed = number % FAILED_EVERY == FAILED_EVERY - 1
        state = AssemblyState(
            generation=generation,
            file_hash=file_hash,
            file_size=size,
            chunk_count=1,
            partition=partition,
            first_chunk_at=finished - 0.5,
            last_chunk_at=finished - 0.1,
            mtime=finished - 60,
            status=Status.FAILED if failed else Status.COMPLETED,
            chunk_length=size,
            reason="file hash mismatch" if failed else None,
            finished_at=finished,
        )
        entries = {"assemblies": (key, state.dumps())}
        if not failed:
            transfer = replace(
                TransferState.new(
                    file_id, generation=generation, file_hash=file_hash, size=size, max_retries=3, now=finished + 0.5
                ),
                state=State.VALID,
                checksum="AAAAAA==",
            )
            record = TransferRecord(transfer, partition, payload_epoch=0, chunk_count=1, expected_checksum="AAAAAA==")
            entries["transfers"] = (key, record.dumps())
            event = FileEvent(COMPLETED, SOURCE, path, generation, file_hash, size, 1, finished - 0.5, finished)
            result = ProcessorResult(
                processor="metadata",
                file=file_id,
                generation=generation,
                file_hash=file_hash,
                status=ResultStatus.PROCESSED,
                reason=None,
                attempts=1,
                updated_at=finished + 0.2,
                partition=partition,
                event=event.asdict(),
            )
            entries["processor-results"] = (result_key("metadata", key), result.dumps())
        yield partition, entries


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"  # Faust's name for a table's changelog


async def create_changelogs(bootstrap: str, app_id: str, partitions: int) -> None:
    """The changelog topics as Faust creates them (compacted), before any worker does."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [
            NewTopic(changelog_topic(app_id, table), partitions, 1, topic_configs={"cleanup.policy": "compact"})
            for table in TABLES
        ]
        await admin.create_topics(topics)
    finally:
        await admin.close()


def write_history(env: Mapping[str, str], files: int, partitions: int, spool: Path) -> float:
    """Produce the history into the changelogs with kcat; the seconds it took (generation included)."""
    kcat = shutil.which("kcat")
    if kcat is None:
        raise HistoryError("kcat is needed to write the history (apt-get install kcat)")
    started = time.monotonic()
    bootstrap = bootstrap_servers(env)
    asyncio.run(create_changelogs(bootstrap, env["FILESTREAM_APP_ID"], partitions))
    spool.mkdir(parents=True, exist_ok=True)
    handles = {
        (table, partition): (spool / f"{table}-{partition}.txt").open("wb")
        for table in TABLES
        for partition in range(partitions)
    }
    try:
        for partition, entries in history_entries(files, partitions, time.time()):
            for table, (key, value) in entries.items():
                handles[table, partition].write(key + b"\t" + value + b"\n")  # JSON escapes tabs and newlines
    finally:
        for handle in handles.values():
            handle.close()
    log.info("generated %d files' entries in %.1f s; producing them", files, time.monotonic() - started)
    runs = []
    for (table, partition), handle in handles.items():
        argv = [kcat, "-P", "-b", bootstrap, "-t", changelog_topic(env["FILESTREAM_APP_ID"], table)]
        argv += ["-p", str(partition), "-K", "\t", "-l", handle.name, "-X", "linger.ms=50", "-X", "acks=all"]
        runs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))  # noqa: S603  (kcat from PATH, our arguments)
        if len(runs) >= 4:
            _wait_kcat(runs.pop(0))
    for run in runs:
        _wait_kcat(run)
    shutil.rmtree(spool)
    return time.monotonic() - started


def _wait_kcat(run: subprocess.Popen[bytes]) -> None:
    if run.wait() != 0:
        raise HistoryError(f"kcat {run.args!r} exited with {run.returncode}")


# --- measuring ------------------------------------------------------------------------------


def get_seconds(worker: Worker, path: str) -> float:
    started = time.perf_counter()
    # S310: always the http URL of the worker this process started.
    with urllib.request.urlopen(worker.url + path, timeout=600) as response:  # noqa: S310
        response.read()
    return time.perf_counter() - started


@dataclass
class Latency:
    first: float
    median: float
    p95: float

    @classmethod
    def measure(cls, worker: Worker, path: str, requests: int) -> Latency:
        first = get_seconds(worker, path)
        times = sorted(get_seconds(worker, path) for _ in range(requests))
        return cls(first, statistics.median(times), times[max(0, round(0.95 * len(times)) - 1)])

    def text(self) -> str:
        return f"{_ms(self.median)} / {_ms(self.p95)} (first {_ms(self.first)})"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def dir_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def ready_seconds(worker: Worker, started: float, partitions: int) -> float:
    """Seconds from ``started`` until the worker is ready with ``partitions`` partitions."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not worker.alive():
            raise HistoryError(f"{worker.name} exited:\n{worker.log_tail()}")
        health = worker.health()
        if health and health["ready"] and len(health["assigned_partitions"]) == partitions:
            return time.monotonic() - started
        time.sleep(0.2)
    raise HistoryError(f"{worker.name} not ready with {partitions} partitions after {READY_TIMEOUT}s")


@dataclass
class FreshWorker:
    restore_seconds: float
    peak_rss: int
    rocksdb_bytes: int
    summary: Latency
    dashboard: Latency
    files: dict[str, int]


def fresh_worker(env: Mapping[str, str], work: Path, name: str, partitions: int, requests: int) -> FreshWorker:
    worker = Worker({**env, "FILESTREAM_STANDBY_REPLICAS": "0"}, work / f"{name}-data", name=name)
    started = time.monotonic()
    worker.start()
    try:
        restore = ready_seconds(worker, started, partitions)
        summary = Latency.measure(worker, "/filestream/summary/?scope=worker", requests)
        dashboard = Latency.measure(worker, "/filestream/summary/", requests)
        files = worker.get_json("/filestream/summary/?scope=worker")["files"]
        peak = process_stats(worker.pid).peak_rss
    finally:
        worker.stop()
    # After the stop: without a write-ahead log (tables/store.py) the memtables reach the disk at close.
    rocksdb = dir_bytes(work / f"{name}-data")
    shutil.rmtree(work / f"{name}-data", ignore_errors=True)
    return FreshWorker(restore, peak, rocksdb, summary, dashboard, files)


def takeover_seconds(env: Mapping[str, str], work: Path, standby: int, partitions: int) -> tuple[float, int]:
    """Two workers; the first stopped once both are ready (and standbys current): seconds until the other owns all.

    Also the survivor's peak RSS.
    """
    tag = f"standby{standby}"
    settings = {**env, "FILESTREAM_STANDBY_REPLICAS": str(standby)}
    first = Worker(settings, work / f"{tag}-a-data", name=f"{tag}-a").start()
    second = Worker(settings, work / f"{tag}-b-data", name=f"{tag}-b").start()
    try:
        _wait_split(first, second, partitions)
        if standby:  # the standbys must have caught up with the changelogs before the first worker goes
            _wait_quiet(second)
        stopped = time.monotonic()
        first.stop()
        seconds = ready_seconds(second, stopped, partitions)
        return seconds, process_stats(second.pid).peak_rss
    finally:
        first.stop()
        second.stop()
        for worker in (first, second):
            shutil.rmtree(worker.data_dir, ignore_errors=True)


def _wait_split(first: Worker, second: Worker, partitions: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for worker in (first, second):
            if not worker.alive():
                raise HistoryError(f"{worker.name} exited:\n{worker.log_tail(40)}")
        health = [worker.health() for worker in (first, second)]
        if all(h and h["ready"] and h["assigned_partitions"] for h in health) and (
            sum(len(h["assigned_partitions"]) for h in health if h) == partitions
        ):
            return
        time.sleep(0.5)
    raise HistoryError("the two workers never split the partitions")


def _wait_quiet(worker: Worker, quiet: float = 5.0, busy: float = 0.25) -> None:
    """Until the worker has used under ``busy`` of a core for ``quiet`` seconds: its standby partitions restored.

    (Not its RocksDB size: without a write-ahead log, restored entries stay in memtables for a while.)
    """
    last = process_stats(worker.pid).cpu_seconds
    while True:
        time.sleep(quiet)
        now = process_stats(worker.pid).cpu_seconds
        if now - last < busy * quiet:
            return
        last = now


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def run(files: int, partitions: int, requests: int, takeover: bool) -> str:
    work = fresh_dir(BENCH_VAR / "history")
    load = load_average()
    with bench_stack(work / "stack-logs", "kafka") as stack:
        empty_env = bench_env(stack, work / "empty", partitions)
        log.info("a worker on an empty pipeline")
        empty = fresh_worker(empty_env, work / "empty", "empty", partitions, requests)
        env = bench_env(stack, work / "history", partitions)
        log.info("writing a history of %d files over %d partitions", files, partitions)
        written = write_history(env, files, partitions, work / "history" / "spool")
        log.info("history written in %.1f s; a fresh worker restores it", written)
        fresh = fresh_worker(env, work / "history", "fresh", partitions, requests)
        log.info("fresh worker: %s", fresh)
        takeovers = {}
        if takeover:
            for standby in (0, 1):
                log.info("takeover with %d standby replicas", standby)
                try:
                    takeovers[standby] = takeover_seconds(env, work / "history", standby, partitions)
                except HistoryError as failed:
                    log.error("takeover with %d standby replicas: %s", standby, failed)
    rows = [
        [
            name,
            f"{count:,}",
            partitions,
            f"{result.restore_seconds:.1f} s",
            _mb(result.peak_rss),
            _mb(result.rocksdb_bytes),
            result.summary.text(),
            result.dashboard.text(),
        ]
        for name, count, result in (("empty pipeline", 0, empty), ("history", files, fresh))
    ]
    headers = [
        "worker",
        "files",
        "partitions",
        "fresh worker ready",
        "peak RSS",
        "RocksDB",
        "summary median / p95",
        "dashboard median / p95",
    ]
    lines = [
        f"history of {files:,} files over {partitions} partitions, on Apache Kafka; load average {load:.2f} before",
        f"written into the changelogs in {written:.1f} s; the fresh worker counted {fresh.files}",
        format_table(headers, rows),
    ]
    if takeovers:
        takeover_rows = [
            [f"{standby}", f"{seconds:.1f} s", _mb(peak)] for standby, (seconds, peak) in sorted(takeovers.items())
        ]
        lines += [
            "",
            "two workers, one stopped: until the other is ready with every partition",
            format_table(["standby replicas", "takeover", "survivor's peak RSS"], takeover_rows),
        ]
    for data_dir in work.glob("*/*-data"):  # gigabytes; the logs stay
        shutil.rmtree(data_dir, ignore_errors=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000, help="completed files in the history")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20, help="summary and dashboard requests timed")
    parser.add_argument("--no-takeover", action="store_true", help="skip the two-worker takeover runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    print("\n" + run(args.files, args.partitions, args.requests, not args.no_takeover), flush=True)


if __name__ == "__main__":
    main()
