"""End-to-end benchmark: upload start → last file verified on the worker's disk (and, with ``--s3``, valid in S3).

    .venv/bin/python -m bench.pipeline_bench [--workload mixed|large|both] [--s3] [--quick]
                                             [--broker kafka|tansu] [--partitions 8]

Workloads (seeded, generated into a temp dir):

* ``mixed``: 40 x 4 MiB + 2 x 64 MiB files (288 MiB; ``--quick``: 8 x 4 MiB + 1 x 64 MiB);
* ``large``: one 2 GiB file (``--quick``: 256 MiB).

Each runs on a fresh embedded stack of the chosen broker (Apache Kafka by default) with one
real worker (`faust -A app worker`) and the real upload command.  Prints MB/s (10^6 bytes/s)
from the upload start to the last file on disk, and the worker's peak RSS (VmHWM) and CPU
seconds.  Without ``--s3`` the S3 transfer is off: this measures reassembly.  With ``--s3``
it is on (the default settings), the run lasts until every file is valid in S3, and the
peak RSS is the worker's with the transfer holding the payloads until then.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from bench.common import (
    SOURCE,
    STALL_TIMEOUT,
    Arrivals,
    MiB,
    ProgressClock,
    add_broker_option,
    bench_env,
    bench_stack,
    numbered,
    process_stats,
    valid_transfers,
    write_files,
)
from devstack.testing import upload_command
from devstack.worker import Worker

WORKLOADS = {
    "mixed": {**numbered("medium", 40, 4 * MiB), **numbered("large", 2, 64 * MiB)},
    "large": numbered("large", 1, 2048 * MiB),
}
QUICK_WORKLOADS = {
    "mixed": {**numbered("medium", 8, 4 * MiB), **numbered("large", 1, 64 * MiB)},
    "large": numbered("large", 1, 256 * MiB),
}


def run(name: str, files: dict[str, int], partitions: int, work: Path, broker: str, s3: bool) -> dict:
    source_dir = work / f"{name}-source"
    write_files(source_dir, files)
    with bench_stack(work / f"{name}-logs", broker) as stack:
        env = bench_env(stack, work / name, partitions, FILESTREAM_S3_ENABLED=str(s3).lower())
        worker = Worker(env, work / f"{name}-worker").start()
        try:
            worker.wait_ready(timeout=120)
            started = time.monotonic()
            upload = upload_command(env, source_dir, SOURCE, work / f"{name}-uploader", work / f"{name}-upload.log")
            if upload.wait() != 0:
                raise RuntimeError(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
            uploaded = time.monotonic() - started
            arrivals = Arrivals(Path(env["FILESTREAM_OUTPUT_DIR"]) / SOURCE, files)
            clock = ProgressClock(STALL_TIMEOUT)
            valid = 0
            while arrivals.poll() or (s3 and valid < len(files)):
                valid = valid_transfers([worker]) if s3 else 0
                clock.observe((len(arrivals.pending), valid), lambda: f"{len(arrivals.pending)} files not on disk")
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            stats = process_stats(worker.pid)
        finally:
            worker.stop()
    total = sum(files.values())
    return {
        "workload": name,
        "files": len(files),
        "bytes": total,
        "upload_s": uploaded,
        "end_to_end_s": elapsed,
        "mb_per_s": total / elapsed / 1e6,
        "mib_per_s": total / elapsed / MiB,
        "worker_peak_rss_mb": stats.peak_rss / 1e6,
        "worker_cpu_s": stats.cpu_seconds,
    }


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=[*WORKLOADS, "both"], default="both")
    parser.add_argument("--s3", action="store_true", help="S3 transfer on: timed until every file is valid in S3")
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    add_broker_option(parser)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS
    names = list(workloads) if args.workload == "both" else [args.workload]
    until = "valid in S3" if args.s3 else "on disk (S3 off)"
    with tempfile.TemporaryDirectory(prefix="filestream-bench-") as temp:
        for name in names:
            result = run(name, workloads[name], args.partitions, Path(temp), args.broker, args.s3)
            print(
                f"{result['workload']:6} {result['files']:3} files {result['bytes'] / MiB:7.0f} MiB, broker "
                f"{args.broker}: {result['mb_per_s']:6.1f} MB/s ({result['mib_per_s']:.1f} MiB/s) until {until} in "
                f"{result['end_to_end_s']:.1f}s (upload {result['upload_s']:.1f}s); worker peak RSS "
                f"{result['worker_peak_rss_mb']:.0f} MB, CPU {result['worker_cpu_s']:.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
