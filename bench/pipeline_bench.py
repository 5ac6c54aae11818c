"""End-to-end benchmark: upload start → last file verified on the worker's disk.

    .venv/bin/python -m bench.pipeline_bench [--workload mixed|large|both] [--partitions 8]

Workloads (seeded, generated into a temp dir):

* ``mixed``: 40 x 4 MiB + 2 x 64 MiB files (288 MiB);
* ``large``: one 2 GiB file.

Each runs on a fresh embedded stack (broker memory grows with everything produced) with
one real worker (`faust -A app worker`) and the real upload command.  Prints MB/s
(10^6 bytes/s) from the upload start to the last file on disk, and the worker's peak
RSS (VmHWM) and CPU seconds.  S3 transfer is off here: this measures reassembly.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import Arrivals, MiB, numbered, process_stats, worker_env, write_files
from devstack.processes import child_env
from devstack.stack import DevStack
from devstack.worker import FAUST, PROJECT_ROOT, Worker

WORKLOADS = {
    "mixed": {**numbered("medium", 40, 4 * MiB), **numbered("large", 2, 64 * MiB)},
    "large": numbered("large", 1, 2048 * MiB),
}


def wait_for(output: Path, files: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    arrivals = Arrivals(output, files)
    while arrivals.poll():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(arrivals.pending)} files did not arrive: {sorted(arrivals.pending)[:5]}")
        time.sleep(0.05)


def run(workload: str, partitions: int, work: Path) -> dict:
    files = WORKLOADS[workload]
    source_dir = work / f"{workload}-source"
    write_files(source_dir, files)
    output = work / f"{workload}-output"
    with DevStack(log_dir=work / f"{workload}-logs") as stack:
        env = worker_env(stack, output, partitions, FILESTREAM_S3_ENABLED="false")
        worker = Worker(env, work / f"{workload}-worker").start()
        try:
            worker.wait_ready(timeout=120)
            started = time.monotonic()
            subprocess.run(
                [FAUST, "-A", "app", "upload", str(source_dir), "--source", "bench"],
                env=child_env({**env, "FILESTREAM_DATA_DIR": str(work / f"{workload}-uploader")}),
                cwd=PROJECT_ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            uploaded = time.monotonic() - started
            wait_for(output / "bench", files, timeout=1800)
            elapsed = time.monotonic() - started
            stats = process_stats(worker.process.pid)
        finally:
            worker.stop()
    total = sum(files.values())
    return {
        "workload": workload,
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
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    names = list(WORKLOADS) if args.workload == "both" else [args.workload]
    with tempfile.TemporaryDirectory(prefix="filestream-bench-") as temp:
        for name in names:
            result = run(name, args.partitions, Path(temp))
            print(
                f"{result['workload']:6} {result['files']:3} files {result['bytes'] / MiB:7.0f} MiB: "
                f"{result['mb_per_s']:6.1f} MB/s ({result['mib_per_s']:.1f} MiB/s) end to end in "
                f"{result['end_to_end_s']:.1f}s (upload {result['upload_s']:.1f}s); worker peak RSS "
                f"{result['worker_peak_rss_mb']:.0f} MB, CPU {result['worker_cpu_s']:.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
