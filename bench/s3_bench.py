"""S3 transfer benchmark: a generated file uploaded as the transfer agent uploads a spool file, into moto.

    .venv/bin/python -m bench.s3_bench [--size 2GiB] [--chunk-size 1MiB] [--quick] [--broker kafka|tansu]

Part size, threshold and the threads sending parts come from the ``FILESTREAM_S3_*``
settings (``storage.s3_upload.upload_file``).  Prints the CRC32 rate of this machine, the
upload rate, and the peak RSS of this process
(the uploader; the moto server is a separate process and holds the object).  Only S3 is
measured; the stack's broker (``--broker``) runs idle beside it.  ``--quick``: 64 MiB.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import add_broker_option, bench_stack
from settings import load_settings
from settings.values import parse_size
from storage.objects import object_metadata
from storage.s3 import ensure_bucket, make_s3_client
from storage.s3_upload import PartLayout, upload_file, verify_object

MB = 1e6


def crc32_rate(block: bytes, rounds: int = 256) -> float:
    """MB/s of zlib.crc32 over ``block``-sized chunks, best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        crc = 0
        for _ in range(rounds):
            crc = zlib.crc32(block, crc)
        best = min(best, time.perf_counter() - started)
    return rounds * len(block) / best / MB


def write_generated_file(path: Path, size: int, chunk: bytes) -> None:
    """``size`` bytes of one random block repeated, so generating costs nothing."""
    with path.open("wb") as out:
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(chunk[: size % len(chunk)])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    parser.add_argument("--quick", action="store_true", help="--size 64MiB: a smoke run")
    add_broker_option(parser)
    parser.add_argument("--chunk-size", type=parse_size, default=parse_size("1MiB"))
    args = parser.parse_args()
    size = parse_size("64MiB") if args.quick else args.size
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    chunk = os.urandom(args.chunk_size)
    print(f"zlib.crc32: {crc32_rate(chunk):,.0f} MB/s over {args.chunk_size:,}-byte chunks")

    with tempfile.TemporaryDirectory() as work, bench_stack(Path(work), args.broker) as stack:
        os.environ.update({name: value for name, value in stack.env().items() if name.startswith("AWS_")})
        spooled = Path(work) / "file.bin"
        write_generated_file(spooled, size, chunk)
        client = make_s3_client(settings.s3_threads + 1)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_bucket(client, bucket)
        rss_before = peak_rss_mib()
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        with ThreadPoolExecutor(settings.s3_threads) as parts:
            result = upload_file(
                client,
                bucket,
                "bench/file.bin",
                spooled,
                size,
                object_metadata("bench", "file.bin", 1, "0" * 64, size),
                layout=PartLayout(settings.s3_multipart_threshold, settings.s3_part_size),
                part_pool=parts,
            )
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        problem = verify_object(client, bucket, "bench/file.bin", size=size, checksum=result.checksum)

    print(
        f"uploaded {size:,} bytes in {result.parts} parts of {settings.s3_part_size:,} bytes, "
        f"{settings.s3_threads} at a time"
    )
    print(f"upload: {elapsed:.1f} s, {size / elapsed / MB:,.0f} MB/s (moto on loopback)")
    print(f"uploader CPU: {cpu:.1f} s, the rest of the time it waits for the server")
    print(f"verified: {problem or 'yes'} (CRC32 {result.checksum})")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB (before the upload {rss_before:,.0f} MiB)")


if __name__ == "__main__":
    main()
