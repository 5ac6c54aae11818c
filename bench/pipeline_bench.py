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
import random
import subprocess
import tempfile
import time
from pathlib import Path

from devstack.processes import child_env
from devstack.stack import DevStack
from devstack.worker import FAUST, PROJECT_ROOT, Worker

MiB = 1024**2
WORKLOADS = {
    "mixed": [4 * MiB] * 40 + [64 * MiB] * 2,
    "large": [2048 * MiB],
}


def write_files(root: Path, sizes: list[int], seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    block = rng.randbytes(8 * MiB)
    files = {}
    for number, size in enumerate(sizes):
        name = f"bench/{number:04d}.bin"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            # Each file starts with its own random bytes, so no two files share a hash.
            handle.write(rng.randbytes(min(size, 4096)))
            remaining = size - min(size, 4096)
            while remaining:
                piece = block[: min(remaining, len(block))]
                handle.write(piece)
                remaining -= len(piece)
        files[name] = size
    return files


def process_stats(pid: int) -> tuple[int, float]:
    """Peak RSS in bytes and CPU seconds (user + system) of a live process."""
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return peak, ticks / 100.0


def wait_for(output: Path, files: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(files)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} files did not arrive: {sorted(pending)[:5]}")
        for name, size in list(pending.items()):
            path = output / name
            if path.exists() and path.stat().st_size == size:
                del pending[name]
        time.sleep(0.05)


def run(workload: str, partitions: int, work: Path) -> dict:
    sizes = WORKLOADS[workload]
    source_dir = work / f"{workload}-source"
    files = write_files(source_dir, sizes)
    output = work / f"{workload}-output"
    with DevStack(log_dir=work / f"{workload}-logs") as stack:
        env = {
            **stack.env(),
            "FILESTREAM_OUTPUT_DIR": str(output),
            "FILESTREAM_PARTITIONS": str(partitions),
            "FILESTREAM_S3_ENABLED": "false",
            "FILESTREAM_SESSION_TIMEOUT": "10",
            "FILESTREAM_HEARTBEAT_INTERVAL": "1",
            "FILESTREAM_LOG_LEVEL": "warning",
        }
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
            peak_rss, cpu = process_stats(worker.process.pid)
        finally:
            worker.stop()
    total = sum(sizes)
    return {
        "workload": workload,
        "files": len(sizes),
        "bytes": total,
        "upload_s": uploaded,
        "end_to_end_s": elapsed,
        "mb_per_s": total / elapsed / 1e6,
        "mib_per_s": total / elapsed / MiB,
        "worker_peak_rss_mb": peak_rss / 1e6,
        "worker_cpu_s": cpu,
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
