"""Upload benchmark: 1 GiB of generated files through the uploader into a broker of its own.

    .venv/bin/python -m bench.upload_bench [--repeat 3] [--cold] [--total 1GiB] [--quick] [--broker kafka|tansu]

Runs, each against a fresh broker of the chosen kind (Apache Kafka by default; a fresh one
each time, so no run pays for what an earlier one stored):

* 16 x 64 MiB files at chunk sizes 256 KiB, 512 KiB, 1 MiB and 4 MiB: which chunk size
  is fastest.  64 MiB files are kept in memory by the scan (read exactly once).
* 4 x 256 MiB files at 1 MiB, once as shipped (over the 64 MiB keep limit: payloads
  re-read from the page cache and verified) and once with a keep limit above the file
  size (read once, held in memory): the measured cost of never reading a file twice.
* 1024 x 1 MiB files at 1 MiB: per-file overheads (registry, scan, acknowledgements).

``--quick`` is ``--total 256MiB``.  ``--cold`` evicts the generated files from the page cache before each run
(``posix_fadvise(DONTNEED)``, only these files), so the first read comes from disk.
Prints MB/s (10^6 bytes) per run and the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import add_broker_option, bench_stack
from client.chunking import DEFAULT_KEEP_LIMIT
from client.discovery import discover
from client.progress import LogProgress
from client.registry import Registry
from client.topics import TopicMismatch, ensure_topics
from client.upload_options import UploadOptions
from client.upload_report import Outcome
from client.uploader import Uploader, upload_once
from settings import load_settings
from settings.values import parse_size

KiB, MiB = 1024, 1024**2


@dataclass(frozen=True)
class Run:
    files: int
    file_size: int
    chunk_size: int
    keep_limit: int = DEFAULT_KEEP_LIMIT

    def __str__(self) -> str:
        return (
            f"{self.files:5d} x {self.file_size // MiB:4d} MiB files, chunk {self.chunk_size // KiB:5d} KiB, "
            f"keep limit {self.keep_limit // MiB:4d} MiB"
        )


def plan(total: int) -> list[Run]:
    runs = [Run(total // (64 * MiB), 64 * MiB, size) for size in (256 * KiB, 512 * KiB, MiB, 4 * MiB)]
    runs += [Run(total // (256 * MiB), 256 * MiB, MiB), Run(total // (256 * MiB), 256 * MiB, MiB, 512 * MiB)]
    runs.append(Run(total // MiB, MiB, MiB))
    return runs


def generate(directory: Path, run: Run, block: bytes) -> Path:
    """The run's files, made of one random block repeated (generation costs nothing); reused between runs."""
    layout = directory / f"{run.files}x{run.file_size}"
    if not layout.exists():
        partial = layout.with_suffix(".partial")
        partial.mkdir()
        for number in range(run.files):
            with open(partial / f"file-{number:05d}.bin", "wb") as out:
                for offset in range(0, run.file_size, len(block)):
                    out.write(block[: run.file_size - offset])
        partial.rename(layout)
    return layout


def evict_from_page_cache(directory: Path) -> None:
    for path in directory.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


async def upload(settings, files_dir: Path, run: Run) -> tuple[float, int]:
    options = UploadOptions(chunk_size=run.chunk_size, keep_limit=run.keep_limit)
    found = discover([files_dir], "bench")
    with Registry.in_data_dir(settings.data_dir, settings.chunks_topic) as registry:
        uploader = Uploader(settings, registry, options, LogProgress())
        try:
            report = await upload_once(uploader, found.files, found.rejected)
        finally:
            await uploader.stop()
    if not report.ok or report.count(Outcome.SENT) != run.files:
        raise RuntimeError("benchmark upload failed:\n" + "\n".join(report.summary_lines()))
    return report.elapsed, sum(result.size for result in report.results)


async def topics_ready(settings, timeout: float = 30.0) -> None:
    """Create the topics before the timed run, as a running pipeline would have them.

    Kafka answers CreateTopics before the new topic's partitions are in its metadata, so the
    check that follows the creation can see 0 partitions for a moment: ask again until it passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ensure_topics(settings)
            return
        except TopicMismatch:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def measure(work_dir: Path, files_dir: Path, run: Run, cold: bool, broker: str) -> float:
    tag = uuid.uuid4().hex[:8]
    with bench_stack(work_dir / f"stack-{tag}", broker) as stack:
        settings = load_settings(
            {
                **stack.env(),
                "FILESTREAM_CHUNK_SIZE": str(run.chunk_size),
                "FILESTREAM_CHUNKS_TOPIC": f"bench-chunks-{tag}",
                "FILESTREAM_COMPLETED_TOPIC": f"bench-completed-{tag}",
                "FILESTREAM_METADATA_TOPIC": f"bench-metadata-{tag}",
                "FILESTREAM_DATA_DIR": str(work_dir / f"data-{tag}"),
            }
        )
        asyncio.run(topics_ready(settings))
        if cold:
            evict_from_page_cache(files_dir)
        elapsed, size = asyncio.run(upload(settings, files_dir, run))
    return size / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", default="1GiB", help="bytes per run (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration; the best is reported")
    parser.add_argument("--cold", action="store_true", help="evict the files from the page cache before each run")
    parser.add_argument("--quick", action="store_true", help="--total 256MiB: a smoke run")
    add_broker_option(parser)
    parser.add_argument("--work-dir", type=Path, default=None, help="where to generate the files (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    block = os.urandom(4 * MiB)
    with tempfile.TemporaryDirectory(prefix="upload-bench-", dir=args.work_dir) as temp:
        work_dir = Path(temp)
        results = []
        for run in plan(parse_size("256MiB" if args.quick else args.total)):
            files_dir = generate(work_dir, run, block)
            rates = [measure(work_dir, files_dir, run, args.cold, args.broker) for _ in range(args.repeat)]
            results.append((run, rates))
            print(f"{run}: " + ", ".join(f"{rate:6.1f}" for rate in rates) + " MB/s", flush=True)
    print(f"\n{'configuration':70s} {'best MB/s':>10s} {'median':>8s}")
    for run, rates in results:
        print(f"{str(run):70s} {max(rates):10.1f} {statistics.median(rates):8.1f}")
    print(f"peak RSS of the uploader process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"broker: {args.broker}")
    print(f"cache: {'cold (evicted before each run)' if args.cold else 'warm (files just written)'}")


if __name__ == "__main__":
    main()
