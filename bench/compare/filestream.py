"""filestream's run: one worker and the real upload command, timed to disk and to S3."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.common import (
    Workload,
    bench_env,
    bench_stack,
    process_stats,
    stack_stats,
    timed_upload,
    topic_bytes,
    verify_delivery,
)
from bench.compare.profiling import Profiler
from bench.compare.run import Run, topic_groups
from devstack.worker import Worker


def run_filestream(
    workload: Workload, work: Path, partitions: int, broker: str, stall_timeout: float, profile_path: Path | None = None
) -> Run:
    run = Run("filestream", ("sent", "received", "in_s3"), "worker")
    with bench_stack(work / "logs", broker) as stack:
        env = bench_env(stack, work, partitions)
        worker = Worker(env, work / "worker").start()
        try:
            worker.wait_ready(timeout=120)
            profiler = Profiler.attach(worker.pid, profile_path) if profile_path else None
            worker_before, stack_before = process_stats(worker.pid), stack_stats(stack)
            timed = timed_upload(workload, env, [worker], work, stall_timeout=stall_timeout)
            run.stages, run.problem = timed.stages, timed.stalled
            if timed.uploader:
                run.processes["uploader"] = timed.uploader
            run.processes["worker"] = process_stats(worker.pid) - worker_before
            run.processes.update({name: stats - stack_before[name] for name, stats in stack_stats(stack).items()})
            if profiler:
                profiler.stop()
        finally:
            worker.stop()
        run.verdict = verify_delivery(workload, stack, env)
        sizes = asyncio.run(topic_bytes(stack.bootstrap_servers))
        run.broker_bytes = topic_groups(sizes, env["FILESTREAM_CHUNKS_TOPIC"])
    return run
