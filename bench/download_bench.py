"""Download benchmark: one generated object (2 GiB by default) from a moto server of its own to local disk.

    .venv/bin/python -m bench.download_bench [--size 2GiB] [--jobs 1] [--quick] [--broker kafka|tansu]

The object goes up through ``upload_file`` (as the transfer agent sends a spooled file) from
a separate process, so that this process only downloads and its peak RSS (``getrusage``)
is the downloader's: list, describe and plan, then a verified, atomic, streamed write
(fsync included) through :func:`client.downloader.execute`.  The moto server is a
separate process too, and holds the object.  Only S3 is measured; the stack's broker
(``--broker``) runs idle beside it.  ``--quick``: 64 MiB.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import add_broker_option, bench_stack
from bench.s3_bench import MB, cpu_seconds, peak_rss_mib, write_generated_file
from client.download_plan import plan_downloads
from client.downloader import LogProgress, describe_objects, execute
from settings import load_settings
from settings.values import parse_size
from storage.objects import object_key, object_metadata
from storage.s3 import ensure_bucket, make_s3_client
from storage.s3_upload import PartLayout, upload_file

SOURCE, PATH = "bench", "large.bin"


def upload(bucket: str, size: int, work: str) -> None:
    """Runs in a child process: the upload's part buffers must not count against the downloader's RSS."""
    settings = load_settings()
    client = make_s3_client(settings.s3_threads + 1)
    ensure_bucket(client, bucket)
    spooled = Path(work) / "upload.bin"
    write_generated_file(spooled, size, os.urandom(1024**2))
    with ThreadPoolExecutor(settings.s3_threads) as parts:
        upload_file(
            client,
            bucket,
            object_key(settings.s3_prefix, SOURCE, PATH),
            spooled,
            size,
            object_metadata(SOURCE, PATH, 1, "0" * 64, size),
            layout=PartLayout(settings.s3_multipart_threshold, settings.s3_part_size),
            part_pool=parts,
        )
    spooled.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    parser.add_argument("--quick", action="store_true", help="--size 64MiB: a smoke run")
    add_broker_option(parser)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    size = parse_size("64MiB") if args.quick else args.size
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"

    with tempfile.TemporaryDirectory() as work, bench_stack(Path(work) / "logs", args.broker) as stack:
        os.environ.update({name: value for name, value in stack.env().items() if name.startswith("AWS_")})
        uploader = multiprocessing.get_context("spawn").Process(target=upload, args=(bucket, size, work))
        uploader.start()
        uploader.join()
        if uploader.exitcode != 0:
            raise SystemExit(f"the upload failed with exit code {uploader.exitcode}")

        client = make_s3_client(args.jobs)
        rss_before = peak_rss_mib()
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        plan = plan_downloads(
            describe_objects(client, bucket, [object_key(settings.s3_prefix, SOURCE, PATH)], jobs=args.jobs),
            bucket_prefix=settings.s3_prefix,
            dest=Path(work) / "out",
            layout="mirror",
            overwrite=False,
            exists=os.path.lexists,
        )
        report = execute(plan, client, bucket, jobs=args.jobs, progress=LogProgress(plan), stop=threading.Event())
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        if report.written != [plan.downloads[0].destination]:
            raise SystemExit(f"the download failed: {report.failed}")
        written = report.written[0].stat().st_size

    print(f"downloaded {written:,} bytes, CRC32 verified, fsynced and renamed into place")
    print(f"download: {elapsed:.1f} s, {written / elapsed / MB:,.0f} MB/s (moto on loopback)")
    print(f"downloader CPU: {cpu:.1f} s")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB (before the download {rss_before:,.0f} MiB)")


if __name__ == "__main__":
    main()
