"""Backlog benchmark: the topic is filled first, then one worker drains it alone, S3 on.

    .venv/bin/python -m bench.drain_bench [--runs 3] [--quick] [--broker kafka|tansu] [--profile [--gil]]

The upload command sends the whole ``bench.compare`` workload while no worker runs; then a
worker starts on an empty data dir and is timed from ready until every file is valid in S3.
Printed per run: that time, the worker's CPU-seconds (and per GB), its page faults and its
peak RSS, and the broker's and S3 server's CPU.  Without the uploader competing for the two
cores, it shows the worker's own costs, and the memory of a worker that has a backlog to
read (after a stop, or when it is slower than its uploaders).  Each run is a fresh pipeline
(app id, topics, bucket) on one stack; the first run also warms the broker up, so compare
the later ones.  ``--profile`` samples the worker of the last run with py-spy and prints
where its time goes (the raw stacks are kept in ``var/bench/drain/worker-profile.txt``); with ``--gil``, only the
thread holding the GIL is sampled, which tells the Python work apart from waits in C calls.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from bench.common import (
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
    process_stats,
    prune,
    stack_stats,
    valid_transfers,
)
from bench.compare.profiling import Profiler, profile_report
from devstack.stack import DevStack
from devstack.testing import upload_command
from devstack.worker import Worker

log = logging.getLogger("bench.drain_bench")

DRAIN_TIMEOUT = 600.0


def minor_faults(pid: int) -> int:
    """Page faults served without I/O (``minflt``, /proc/PID/stat), which fresh mmapped buffers cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])


def drain_once(
    stack: DevStack,
    workload: Workload,
    work: Path,
    partitions: int,
    profile_path: Path | None = None,
    gil_only: bool = False,
) -> list[str]:
    env = bench_env(stack, work, partitions)
    upload = upload_command(env, workload.source_dir, SOURCE, work / "uploader", work / "upload.log")
    while not upload.finished():
        time.sleep(0.2)
    if upload.returncode != 0:
        raise RuntimeError(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
    worker = Worker(env, work / "worker").start()
    try:
        worker.wait_ready(timeout=120)
        profiler = Profiler.attach(worker.pid, profile_path, gil_only=gil_only) if profile_path else None
        before, stack_before, faults_before = process_stats(worker.pid), stack_stats(stack), minor_faults(worker.pid)
        started = time.monotonic()
        while valid_transfers([worker]) < len(workload.sizes):
            if time.monotonic() - started > DRAIN_TIMEOUT:
                raise RuntimeError(f"not every file valid in S3 after {DRAIN_TIMEOUT:.0f} s:\n{worker.log_tail(20)}")
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        spent, faults = process_stats(worker.pid) - before, minor_faults(worker.pid) - faults_before
        others = {name: stats - stack_before[name] for name, stats in stack_stats(stack).items()}
        if profiler:
            profiler.stop()
    finally:
        worker.stop()
    gigabytes = workload.total_bytes / 1e9
    return [
        f"{elapsed:.1f} s",
        f"{spent.cpu_seconds:.1f} s ({spent.cpu_seconds / gigabytes:.1f} s/GB)",
        f"{faults / 1e6:.2f} M",
        f"{spent.peak_rss / MB:.0f} MB",
        ", ".join(f"{name} {stats.cpu_seconds:.1f} s" for name, stats in others.items()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a much smaller workload")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="py-spy on the worker of the last run")
    parser.add_argument("--gil", action="store_true", help="with --profile: sample only the thread holding the GIL")
    add_broker_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    work = fresh_dir(BENCH_VAR / "drain")
    workload = Workload.generate(WORKLOADS["quick" if args.quick else "full"], work / "source", seed=7)
    rows = []
    raw_profile = work / "worker-profile.txt"
    with bench_stack(work / "logs", args.broker) as stack:
        for run in range(args.runs):
            log.info("run %d of %d", run + 1, args.runs)
            profile_path = raw_profile if args.profile and run == args.runs - 1 else None
            run_dir = fresh_dir(work / f"run{run + 1}")
            rows.append([str(run + 1), *drain_once(stack, workload, run_dir, args.partitions, profile_path, args.gil)])
    print(f"\nworkload: {workload.describe()}, in the topic before the worker starts; broker: {args.broker}\n")
    headers = ["run", "all valid in S3", "worker CPU", "page faults", "worker peak RSS", "broker, S3 server CPU"]
    print(format_table(headers, rows))
    if args.profile and raw_profile.exists():
        print(f"\nwhere the last run's worker spends its time ({raw_profile}):\n{profile_report(raw_profile)}")
    prune(work)


if __name__ == "__main__":
    main()
