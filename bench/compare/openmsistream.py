"""OpenMSIStream 1.8.8's run: its directory uploader and downloader, installed once into a venv of its own."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    BENCH_VAR,
    CHUNK_SIZE,
    Arrivals,
    ProgressClock,
    Stall,
    Workload,
    bench_stack,
    create_topic,
    process_stats,
    stack_stats,
    topic_bytes,
    wait_for_group_coordinator,
)
from bench.compare.run import TOPIC, Run, topic_groups
from devstack.processes import ManagedProcess, child_env
from devstack.testing import sha256_file

log = logging.getLogger(__name__)


OPENMSISTREAM = "openmsistream==1.8.8"


OPENMSISTREAM_VENV = BENCH_VAR / "openmsistream-venv"


# OpenMSIStream's shipped producer and consumer settings (kafka_wrapper/config_files/test.config)
# with two additions: message.max.bytes, because a 1 MiB chunk with its msgpack header is over
# librdkafka's default of 1 000 000 bytes; a short consumer session, because the development
# broker holds a JoinGroup for half the session timeout.
OPENMSISTREAM_CONFIG = """\
[broker]
bootstrap.servers = {bootstrap}

[producer]
batch.size = 2000000
linger.ms = 100
compression.type = lz4
message.max.bytes = 4194304
key.serializer = StringSerializer
value.serializer = DataFileChunkSerializer

[consumer]
group.id = create_new
auto.offset.reset = earliest
enable.auto.commit = False
fetch.min.bytes = 100000
session.timeout.ms = 6000
heartbeat.interval.ms = 1000
key.deserializer = StringDeserializer
value.deserializer = DataFileChunkDeserializer
"""


def openmsistream_bin() -> Path:
    """The scripts directory of a virtual environment holding OpenMSIStream, created on first use."""
    marker = OPENMSISTREAM_VENV / f".installed-{OPENMSISTREAM}"
    if not marker.exists():
        log.info("installing %s into %s (once)", OPENMSISTREAM, OPENMSISTREAM_VENV)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(OPENMSISTREAM_VENV)], check=True)
        pip = subprocess.run(
            [OPENMSISTREAM_VENV / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", OPENMSISTREAM],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip install {OPENMSISTREAM} failed:\n{pip.stdout}\n{pip.stderr}")
        marker.touch()
    return OPENMSISTREAM_VENV / "bin"


class IdenticalArrivals(Arrivals):
    """OpenMSIStream writes chunks in place: a file at full size may still have holes, so compare hashes.

    A file whose hash does not match yet is hashed again only once its size or mtime changes.
    """

    def __init__(self, directory: Path, sizes: dict[str, int], hashes: dict[str, str]) -> None:
        super().__init__(directory, sizes)
        self.hashes = hashes
        self.checked: dict[str, tuple[int, int]] = {}

    def poll(self) -> int:
        for name, size in list(self.pending.items()):
            try:
                status = (self.directory / name).stat()
            except FileNotFoundError:
                continue
            seen = (status.st_size, status.st_mtime_ns)
            if status.st_size != size or self.checked.get(name) == seen:
                continue
            if sha256_file(self.directory / name) == self.hashes[name]:
                del self.pending[name]
            else:
                self.checked[name] = seen
        return len(self.pending)


def run_openmsistream(workload: Workload, work: Path, partitions: int, broker: str, stall_timeout: float) -> Run:
    run = Run("OpenMSIStream 1.8.8", ("received",), "downloader")
    scripts = openmsistream_bin()
    output = work / "output"
    with bench_stack(work / "logs", broker) as stack:
        bootstrap = stack.bootstrap_servers
        asyncio.run(create_topic(bootstrap, TOPIC, partitions))
        asyncio.run(wait_for_group_coordinator(bootstrap, TOPIC))
        config = work / "openmsistream.config"
        config.write_text(OPENMSISTREAM_CONFIG.format(bootstrap=bootstrap))
        common = ["--config", str(config), "--topic_name", TOPIC]

        def start(name: str, program: str, *arguments: str) -> ManagedProcess:
            argv = [str(scripts / program), *arguments, *common]
            return ManagedProcess(name, argv, log_path=work / f"{name}.log", env=child_env({}), cwd=work)

        # The uploader keeps its logs and registry in a LOGS folder inside the directory it
        # uploads (elsewhere, it names files relative to the folder's parent): a linked copy
        # of the workload keeps the source clean for the other systems.
        upload_dir = work / "upload"
        shutil.copytree(workload.source_dir, upload_dir, copy_function=os.link)
        downloader = start(
            "downloader", "DataFileDownloadDirectory", str(output), "--logger_file_path", str(work / "downloader-logs")
        )
        uploader: ManagedProcess | None = None
        try:
            _warm_up(scripts, common, work, output, downloader)
            downloader_before, stack_before = process_stats(downloader.pid), stack_stats(stack)
            started = time.monotonic()
            uploader = start(
                "uploader",
                "DataFileUploadDirectory",
                str(upload_dir),
                "--chunk_size",
                str(CHUNK_SIZE),
                "--upload_existing",
                "--watchdog_lag_time",
                "0",
            )
            arrivals = IdenticalArrivals(output, workload.sizes, workload.hashes)
            clock = ProgressClock(stall_timeout)
            try:
                while arrivals.poll():
                    clock.observe(len(arrivals.pending), str)
                    for process in (uploader, downloader):
                        if not process.alive():
                            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
                    time.sleep(0.05)
                run.stages["received"] = time.monotonic() - started
            except Stall:
                run.problem = f"stalled for {stall_timeout:.0f} s at {time.monotonic() - started:.0f} s"
                log.warning(
                    "OpenMSIStream %s, e.g. waiting for %s; downloader log:\n%s",
                    run.problem,
                    sorted(arrivals.pending)[:3],
                    downloader.log_tail(),
                )
            run.processes["uploader"] = process_stats(uploader.pid)
            run.processes["downloader"] = process_stats(downloader.pid) - downloader_before
            run.processes["broker"] = stack_stats(stack)["broker"] - stack_before["broker"]
            files = len(workload.sizes)
            run.verdict = f"{files - len(arrivals.pending)}/{files} byte-identical on disk (no S3 stage)"
        finally:
            downloader.stop()
            if uploader is not None:
                uploader.stop()
        run.broker_bytes = topic_groups(asyncio.run(topic_bytes(bootstrap)), TOPIC)
    return run


def _warm_up(scripts: Path, common: list[str], work: Path, output: Path, downloader: ManagedProcess) -> None:
    """One file through OpenMSIStream's single-file uploader: once it is on disk, the downloader's group has joined."""
    warm_file = work / "warm-up" / "warm-up.bin"
    warm_file.parent.mkdir()
    warm_file.write_bytes(b"warm-up")
    subprocess.run(
        [str(scripts / "UploadDataFile"), str(warm_file), *common, "--logger_file_path", str(work / "warm-up-logs")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=work,
    )
    deadline = time.monotonic() + 120
    while not (output / warm_file.name).exists():
        if time.monotonic() > deadline or not downloader.alive():
            raise RuntimeError(f"OpenMSIStream's downloader did not receive the warm-up file:\n{downloader.log_tail()}")
        time.sleep(0.1)
