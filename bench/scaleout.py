"""Scale-out: one workload through 1, 2 and 4 workers; how the partitions split; recovery after a SIGKILL.

    .venv/bin/python -m bench.scaleout [--quick] [--broker kafka|tansu] [--workers 1,2,4] [--kill-with 2,4]
                                       [--partitions 8] [--seed 1]

The workload is bench.compare's (``full``: 500 x 64 KiB + 40 x 4 MiB + 1 x 512 MiB; ``--quick``
a much smaller one).  Each run has a fresh embedded stack of the chosen broker (Apache Kafka by
default), a chunk topic of ``--partitions``
partitions and N real workers (each its own data dir and web port, one shared output dir);
the upload starts once the partitions are split among all of them.  Stages as in
bench.compare: every chunk acknowledged, every file on disk, every file valid in S3.

Recovery runs (``--kill-with``): when the upload command has finished, the worker with the
most unfinished files (assembling, or not yet valid in S3) is SIGKILLed.  Reported: how long
until the survivors own all partitions, and until every file that was in flight on the
killed worker is on disk and valid in S3, completed by the survivors.  Both depend on the
consumer group session timeout (FILESTREAM_SESSION_TIMEOUT, 10 s here).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    BENCH_SETTINGS,
    BENCH_VAR,
    MB,
    SOURCE,
    WORKLOADS,
    Workload,
    add_broker_option,
    bench_env,
    bench_stack,
    format_table,
    fresh_dir,
    load_average,
    process_stats,
    prune,
    timed_upload,
    verify_delivery,
)
from devstack.testing import ProcessStats, assigned_partitions, is_complete_split, view_rows, wait_for_split
from devstack.worker import Worker

log = logging.getLogger("bench.scaleout")


def unfinished_files(worker: Worker) -> set[str] | None:
    """Files (``source/path``) the worker is assembling or has not yet made valid in S3."""
    assembling = view_rows(worker, "/filestream/files/?status=assembling", "files")
    transfers = view_rows(worker, "/filestream/transfers/", "transfers")
    if assembling is None or transfers is None:
        return None
    return {row["file"] for row in assembling} | {row["file_id"] for row in transfers if row["state"] != "valid"}


@dataclass
class Recovery:
    """Kills the busiest worker once the upload command has finished, then times the survivors' takeover."""

    workers: list[Worker]
    partitions: int
    output: Path  # the output dir: files are at output/source/path
    sizes: dict[str, int]  # by source/path
    victim: Worker | None = None
    victim_partitions: list[int] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    killed_at: float = 0.0
    takeover_after: float | None = None
    completed_after: float | None = None

    def __call__(self, elapsed: float, stages: Mapping[str, float]) -> None:
        if self.victim is None:
            if "sent" in stages:
                self._kill_busiest(elapsed)
            return
        survivors = [worker for worker in self.workers if worker is not self.victim]
        if self.takeover_after is None and is_complete_split(assigned_partitions(survivors), self.partitions):
            self.takeover_after = elapsed - self.killed_at
        if self.completed_after is None and self._in_flight_done(survivors):
            self.completed_after = elapsed - self.killed_at

    def _kill_busiest(self, elapsed: float) -> None:
        split = assigned_partitions(self.workers) or {}
        unfinished = {worker.name: unfinished_files(worker) or set() for worker in self.workers}
        busiest = max(self.workers, key=lambda worker: len(unfinished[worker.name]))
        if not unfinished[busiest.name]:
            return  # nothing in flight anywhere yet: ask again at the next poll
        busiest.kill()
        self.victim, self.victim_partitions, self.in_flight = (
            busiest,
            split.get(busiest.name, []),
            unfinished[busiest.name],
        )
        self.killed_at = elapsed
        log.info("killed %s at %.1fs with %d files in flight", busiest.name, elapsed, len(self.in_flight))

    def _in_flight_done(self, survivors: list[Worker]) -> bool:
        valid: set[str] = set()
        for worker in survivors:
            valid |= {
                row["file_id"] for row in view_rows(worker, "/filestream/transfers/?state=valid", "transfers") or []
            }
        if not self.in_flight <= valid:
            return False
        return all(_size_or_none(self.output / file) == self.sizes[file] for file in self.in_flight)


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


@dataclass
class ScaleRun:
    workers: int
    split: dict[str, list[int]]
    stages: dict[str, float]
    worker_stats: dict[str, ProcessStats]
    verdict: str
    recovery: Recovery | None
    stalled: str  # empty unless progress stopped before every file was valid in S3


def run_workers(workload: Workload, work: Path, count: int, partitions: int, kill: bool, broker: str) -> ScaleRun:
    output = work / "output"
    with bench_stack(work / "logs", broker) as stack:
        env = bench_env(stack, work, partitions)
        workers = [
            Worker(env, work / f"worker-{number}", name=f"worker-{number}").start() for number in range(1, count + 1)
        ]
        try:
            split = wait_for_split(workers, partitions)
            log.info("%d workers ready: %s", count, split)
            before = {worker.name: process_stats(worker.pid) for worker in workers}
            sizes = {f"{SOURCE}/{name}": size for name, size in workload.sizes.items()}
            recovery = Recovery(workers, partitions, output, sizes) if kill else None
            timed = timed_upload(workload, env, workers, work, on_poll=recovery)
            if recovery and recovery.completed_after is None and not timed.stalled:
                recovery(timed.stages["in_s3"], timed.stages)  # the last files may finish between two polls
            stats = {
                worker.name: process_stats(worker.pid) - before[worker.name] for worker in workers if worker.alive()
            }
            verdict = verify_delivery(workload, stack, env)
            return ScaleRun(count, split, timed.stages, stats, verdict, recovery, timed.stalled)
        finally:
            for worker in workers:
                worker.stop()


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "—"


def victim_label(recovery: Recovery) -> str:
    name = recovery.victim.name if recovery.victim else "none"
    return f"{name} ({','.join(map(str, recovery.victim_partitions))})"


def report(workload: Workload, runs: list[ScaleRun], partitions: int, broker: str, load: float) -> str:
    def throughput(run: ScaleRun, stage: str) -> str:
        if stage not in run.stages:
            return "stalled"
        seconds = run.stages[stage]
        rate = workload.total_bytes / seconds / MB
        return f"{seconds:5.1f} s {rate:5.1f} MB/s {len(workload.sizes) / seconds:5.1f} files/s"

    scale = [run for run in runs if run.recovery is None]
    recoveries = [(run, run.recovery) for run in runs if run.recovery is not None]
    lines = [
        f"workload: {workload.describe()}; broker: {broker}; {partitions} partitions; session timeout "
        f"{BENCH_SETTINGS['FILESTREAM_SESSION_TIMEOUT']} s; load average before: {load:.2f}",
        "",
        format_table(
            [
                "workers",
                "sent",
                "on disk",
                "valid in S3",
                "partitions per worker",
                "worker CPU (sum)",
                "largest peak RSS",
            ],
            [
                [
                    run.workers,
                    _seconds(run.stages.get("sent")),
                    throughput(run, "received"),
                    throughput(run, "in_s3"),
                    " | ".join(",".join(map(str, assigned)) for assigned in run.split.values()),
                    f"{sum(stats.cpu_seconds for stats in run.worker_stats.values()):.1f} s",
                    f"{max(stats.peak_rss for stats in run.worker_stats.values()) / 1e6:.0f} MB",
                ]
                for run in scale
            ],
        ),
    ]
    if recoveries:
        lines += [
            "",
            format_table(
                [
                    "workers",
                    "killed (its partitions)",
                    "at",
                    "files in flight on it",
                    "partitions taken over after",
                    "in-flight files completed after",
                    "all valid in S3 at",
                ],
                [
                    [
                        run.workers,
                        victim_label(recovery),
                        _seconds(recovery.killed_at),
                        len(recovery.in_flight),
                        _seconds(recovery.takeover_after),
                        _seconds(recovery.completed_after),
                        _seconds(run.stages.get("in_s3")),
                    ]
                    for run, recovery in recoveries
                ],
            ),
        ]
    lines += [
        "",
        *(
            f"{run.workers} workers{' (one killed)' if run.recovery else ''}: {run.verdict}"
            + (f"; {run.stalled}" if run.stalled else "")
            for run in runs
        ),
    ]
    return "\n".join(lines)


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller workload")
    add_broker_option(parser)
    parser.add_argument("--workers", type=_counts, default=[1, 2, 4], help="worker counts to measure (default 1,2,4)")
    parser.add_argument(
        "--kill-with", type=_counts, default=[2, 4], help="worker counts of the recovery runs (default 2,4)"
    )
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if any(count < 2 for count in args.kill_with):
        parser.error("a recovery run needs at least 2 workers")

    work = fresh_dir(BENCH_VAR / "scaleout")
    load = load_average()
    workload = Workload.generate(WORKLOADS["quick" if args.quick else "full"], work / "source", args.seed)
    log.info("workload: %s", workload.describe())
    plan = [(count, False) for count in args.workers] + [(count, True) for count in args.kill_with]
    runs = []
    for count, kill in plan:
        log.info("running %d workers%s", count, " with one killed" if kill else "")
        run_dir = fresh_dir(work / f"{count}-workers{'-kill' if kill else ''}")
        runs.append(run_workers(workload, run_dir, count, args.partitions, kill, args.broker))
        prune(run_dir)
    shutil.rmtree(workload.source_dir)
    print("\n" + report(workload, runs, args.partitions, args.broker, load), flush=True)


if __name__ == "__main__":
    main()
