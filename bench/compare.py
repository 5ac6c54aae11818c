"""Side-by-side benchmark: filestream, OpenMSIStream 1.8.8 and the bare-Kafka ceiling on one workload.

    .venv/bin/python -m bench.compare [--quick] [--only filestream,openmsistream,ceiling]
                                      [--partitions 8] [--seed 1] [--profile]

The workload is seeded and generated once: many small files, some medium, one large
(``full``: 500 x 64 KiB + 40 x 4 MiB + 1 x 512 MiB; ``--quick``: 50 x 64 KiB + 8 x 4 MiB +
1 x 32 MiB).  Each system runs on a fresh embedded stack (the dev broker keeps everything
in memory), on a chunk topic of ``--partitions`` partitions, with 1 MiB chunks:

* **filestream**: one worker (`faust -A app worker`, default settings: output dir, S3,
  metadata reproducer) and the real upload command.  Stages, timed from the upload's
  start: every chunk acknowledged by the broker (the command exits), every file on disk,
  every file valid in S3 (the worker's transfers view).  Afterwards every output file and
  every S3 object is read back and compared with its source.
* **OpenMSIStream 1.8.8**, installed once into ``var/bench/openmsistream-venv``: its
  ``DataFileDownloadDirectory`` (warmed up with one file, so its consumer group has
  joined) and ``DataFileUploadDirectory --upload_existing`` with its shipped producer
  settings.  Timed from the uploader's start until every file on disk is byte-identical.
* **ceiling**: aiokafka producing the same files as records of up to 1 MiB (acks=all) while
  a consumer reads them, with no other work: the most this broker moves on this machine.

Prints, per stage and system, seconds, MB/s (10^6 bytes/s) and files/s; peak RSS and CPU
seconds of every process (workers and consumers from the start of the timed run); then
filestream's ratio to OpenMSIStream and its fraction of the ceiling.  ``--profile`` adds
one more filestream run with py-spy sampling the worker (skipped if py-spy is missing) and
prints where the worker's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Queue

from bench.common import (
    BENCH_VAR,
    CHUNK_SIZE,
    MB,
    STAGES,
    STALL_TIMEOUT,
    WORKLOADS,
    Arrivals,
    KiB,
    MiB,
    ProcessStats,
    ProgressClock,
    Workload,
    broker_address,
    create_topic,
    format_table,
    fresh_dir,
    load_average,
    process_stats,
    prune,
    sha256_file,
    stack_stats,
    timed_upload,
    verify_delivery,
    worker_env,
)
from devstack.processes import ManagedProcess, child_env
from devstack.stack import DevStack
from devstack.worker import PROJECT_ROOT, Worker

log = logging.getLogger("bench.compare")

TOPIC = "bench-chunks"
SYSTEMS = ("filestream", "openmsistream", "ceiling")
# The ceiling's consumer writes nothing: its "received" is "consumed".
STAGE_TITLES = {**STAGES, "received": "received (on disk; ceiling: consumed)"}

OPENMSISTREAM = "openmsistream==1.8.8"
OPENMSISTREAM_VENV = BENCH_VAR / "openmsistream-venv"
# OpenMSIStream's shipped producer and consumer settings (kafka_wrapper/config_files/test.config)
# with two additions: message.max.bytes, because a 1 MiB chunk with its msgpack header is over
# librdkafka's default of 1 000 000 bytes; a short consumer session, because the dev broker holds
# a JoinGroup for half the session timeout.
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


@dataclass
class Run:
    system: str
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds from the start
    processes: dict[str, ProcessStats] = field(default_factory=dict)
    verdict: str = ""


# --- filestream ---------------------------------------------------------------------------


def run_filestream(workload: Workload, work: Path, partitions: int, profile_path: Path | None = None) -> Run:
    run = Run("filestream")
    with DevStack(log_dir=work / "logs") as stack:
        env = worker_env(stack, work / "output", partitions)
        worker = Worker(env, work / "worker").start()
        try:
            worker.wait_ready(timeout=120)
            profiler = Profiler.attach(worker.process.pid, profile_path) if profile_path else None
            worker_before, stack_before = process_stats(worker.process.pid), stack_stats(stack)
            timed = timed_upload(workload, env, [worker], work)
            run.stages = timed.stages
            run.processes["uploader"] = timed.uploader
            run.processes["worker"] = process_stats(worker.process.pid) - worker_before
            run.processes.update({name: stats - stack_before[name] for name, stats in stack_stats(stack).items()})
            if profiler:
                profiler.stop()
            run.verdict = verify_delivery(workload, stack, env)
        finally:
            worker.stop()
    return run


class Profiler:
    """py-spy sampling one process into a raw (collapsed stacks) file, where py-spy is installed."""

    def __init__(self, popen: subprocess.Popen, output: Path) -> None:
        self.popen = popen
        self.output = output

    @classmethod
    def attach(cls, pid: int, output: Path) -> Profiler | None:
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            log.warning("py-spy is not installed (pip install py-spy): running without a profile")
            return None
        argv = [
            py_spy,
            "record",
            "-p",
            str(pid),
            "-f",
            "raw",
            "-o",
            str(output),
            "--nolineno",
            "--threads",
            "-r",
            "100",
        ]
        popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return cls(popen, output)

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        self.popen.wait(60)


# Leaf frames of threads that wait (the event loop in epoll, idle executor threads): py-spy
# counts them as active because they wait inside C calls it cannot tell from work.
WAITING_FRAMES = ("EpollSelector.select (selectors.py)", "_worker (concurrent/futures/thread.py)")


def _frame_module(frame: str) -> str:
    """``"Store._set (faust/stores/rocksdb.py)"`` → ``"faust"``."""
    return frame.rpartition("(")[2].split("/")[0].removesuffix(")")


def profile_report(raw: Path, top: int = 15) -> str:
    """Busy seconds per thread; where the event loop thread spends them; filestream's functions over all threads.

    The event loop runs every agent one event at a time, so its busy time bounds the worker;
    the S3 and file threads mostly wait for I/O (py-spy counts a blocking read as busy).
    """
    project_modules = {
        path.stem for path in PROJECT_ROOT.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()
    }
    threads: Counter[str] = Counter()
    event_loop: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count, (thread, *frames) = int(count_text), stack.split(";")
        if not frames or frames[-1] in WAITING_FRAMES:
            continue
        name = thread.partition(": ")[2]  # "thread (4711): MainThread"
        threads[name] += count
        if name == "MainThread":
            event_loop[frames[-1]] += count
        for frame in set(frames):
            if _frame_module(frame) in project_modules:
                inclusive[frame] += count
    if not threads:
        return "no busy samples"

    def shares(counter: Counter[str], of: int) -> list[tuple[str, str]]:
        return [(frame[:110], f"{100 * count / of:5.1f} %") for frame, count in counter.most_common(top)]

    return "\n\n".join(
        [
            format_table(
                ["thread", "busy (py-spy, 100 samples/s)"],
                [(name, f"{count / 100:.1f} s") for name, count in threads.most_common()],
            ),
            format_table(
                ["event loop thread: function at the top of the stack", "of its busy time"],
                shares(event_loop, threads["MainThread"]),
            ),
            format_table(
                ["filestream's own functions, all threads (inclusive)", "of all busy time"],
                shares(inclusive, sum(threads.values())),
            ),
        ]
    )


# --- OpenMSIStream ------------------------------------------------------------------------


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


def run_openmsistream(workload: Workload, work: Path, partitions: int) -> Run:
    run = Run("OpenMSIStream 1.8.8")
    scripts = openmsistream_bin()
    output = work / "output"
    with DevStack(log_dir=work / "logs") as stack:
        bootstrap = broker_address(stack)
        asyncio.run(create_topic(bootstrap, TOPIC, partitions))
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
        uploader = None
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
            clock = ProgressClock(STALL_TIMEOUT)
            while arrivals.poll():
                clock.observe(
                    len(arrivals.pending),
                    lambda: (
                        f"{len(arrivals.pending)} OpenMSIStream files not identical on disk "
                        f"(e.g. {sorted(arrivals.pending)[:3]}); downloader log:\n{downloader.log_tail()}"
                    ),
                )
                for process in (uploader, downloader):
                    if not process.alive():
                        raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
                time.sleep(0.05)
            run.stages["received"] = time.monotonic() - started
            run.processes["uploader"] = process_stats(uploader.pid)
            run.processes["downloader"] = process_stats(downloader.pid) - downloader_before
            run.processes["broker"] = stack_stats(stack)["broker"] - stack_before["broker"]
            run.verdict = f"{len(workload.sizes)}/{len(workload.sizes)} byte-identical on disk (no S3 stage)"
        finally:
            for process in (uploader, downloader):
                if process is not None:
                    process.stop()
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


# --- the ceiling --------------------------------------------------------------------------


def _own_stats() -> ProcessStats:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ProcessStats(usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)


def produce_files(bootstrap: str, source_dir: Path, names: list[str], ready: Event, go: Event, results: Queue) -> None:
    """Child process: every file as records of up to CHUNK_SIZE bytes, acks=all, as fast as the broker takes them."""
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, max_request_size=4 * MiB
        )
        await producer.start()
        try:
            ready.set()
            go.wait()
            before = _own_stats()
            in_flight: list[asyncio.Future] = []
            for name in names:
                with (source_dir / name).open("rb") as handle:
                    while piece := handle.read(CHUNK_SIZE):
                        in_flight.append(await producer.send(TOPIC, key=name.encode(), value=piece))
                        if len(in_flight) >= 64:
                            await in_flight.pop(0)
            await asyncio.gather(*in_flight)
            results.put(("sent", time.monotonic(), _own_stats() - before))
        finally:
            await producer.stop()

    asyncio.run(produce())


def consume_records(bootstrap: str, partitions: int, expected: int, ready: Event, results: Queue) -> None:
    """Child process: read every record of the topic from the start, doing nothing with it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def consume() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * MiB,
            fetch_max_bytes=64 * MiB,
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(TOPIC, partition) for partition in range(partitions)])
            await consumer.seek_to_beginning()
            before = _own_stats()
            ready.set()
            received, last_progress = 0, time.monotonic()
            while received < expected:
                batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                count = sum(len(records) for records in batches.values())
                if count:
                    received, last_progress = received + count, time.monotonic()
                elif time.monotonic() - last_progress > STALL_TIMEOUT:
                    results.put(("stalled", time.monotonic(), f"{received} of {expected} records"))
                    return
            results.put(("received", time.monotonic(), _own_stats() - before))
        finally:
            await consumer.stop()

    asyncio.run(consume())


def run_ceiling(workload: Workload, work: Path, partitions: int) -> Run:
    run = Run("aiokafka ceiling")
    with DevStack(log_dir=work / "logs") as stack:
        bootstrap = broker_address(stack)
        asyncio.run(create_topic(bootstrap, TOPIC, partitions))
        context = multiprocessing.get_context("spawn")
        producer_ready, consumer_ready, go = context.Event(), context.Event(), context.Event()
        results = context.Queue()
        children = [
            context.Process(
                target=consume_records, args=(bootstrap, partitions, workload.record_count, consumer_ready, results)
            ),
            context.Process(
                target=produce_files,
                args=(bootstrap, workload.source_dir, list(workload.sizes), producer_ready, go, results),
            ),
        ]
        for child in children:
            child.start()
        try:
            if not (producer_ready.wait(60) and consumer_ready.wait(60)):
                raise RuntimeError("the aiokafka producer or consumer did not start")
            stack_before = stack_stats(stack)
            started = time.monotonic()
            go.set()
            for _ in children:
                stage, finished, detail = results.get(timeout=3600)
                if stage == "stalled":
                    raise RuntimeError(f"the ceiling's consumer stalled after {detail}")
                run.stages[stage] = finished - started
                run.processes["producer" if stage == "sent" else "consumer"] = detail
            run.processes["broker"] = stack_stats(stack)["broker"] - stack_before["broker"]
            run.verdict = f"{workload.record_count}/{workload.record_count} records consumed"
        finally:
            for child in children:
                child.join(10)
                if child.is_alive():
                    child.kill()
    return run


# --- report -------------------------------------------------------------------------------


def stage_cell(workload: Workload, run: Run | None, stage: str) -> str:
    if run is None or stage not in run.stages:
        return "—"
    seconds = run.stages[stage]
    return (
        f"{seconds:6.1f} s {workload.total_bytes / seconds / MB:6.1f} MB/s {len(workload.sizes) / seconds:6.1f} files/s"
    )


def report(workload: Workload, runs: dict[str, Run], partitions: int, load: float) -> str:
    ordered = [runs.get(system) for system in SYSTEMS]
    lines = [
        f"workload: {workload.describe()}; {partitions} partitions; {CHUNK_SIZE // KiB} KiB chunks; "
        f"load average before: {load:.2f}",
        "",
        format_table(
            [
                "stage (from the upload's start)",
                *(run.system if run else system for run, system in zip(ordered, SYSTEMS, strict=True)),
            ],
            [[title, *(stage_cell(workload, run, stage) for run in ordered)] for stage, title in STAGE_TITLES.items()],
        ),
        "",
        format_table(
            ["process", "system", "peak RSS", "CPU"],
            [
                [name, run.system, f"{stats.peak_rss / 1e6:.0f} MB", f"{stats.cpu_seconds:.1f} s"]
                for run in ordered
                if run
                for name, stats in run.processes.items()
            ],
            text_columns=2,
        ),
        "",
        *(f"{run.system}: {run.verdict}" for run in ordered if run),
    ]
    filestream, openmsistream, ceiling = ordered
    if filestream and "received" in filestream.stages:
        if openmsistream:
            ratio = openmsistream.stages["received"] / filestream.stages["received"]
            lines.append(f"filestream / OpenMSIStream, on disk: {ratio:.2f} x the throughput")
        if ceiling:
            for stage in ("received", "in_s3"):
                if stage in filestream.stages:
                    fraction = ceiling.stages["received"] / filestream.stages[stage]
                    lines.append(f"filestream {STAGE_TITLES[stage]} / ceiling (consumed): {100 * fraction:.0f} %")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller workload")
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="one more filestream run with py-spy on the worker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    systems = [system.strip() for system in args.only.split(",") if system.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")

    work = fresh_dir(BENCH_VAR / "compare")
    load = load_average()
    sizes = WORKLOADS["quick" if args.quick else "full"]
    workload = Workload.generate(sizes, work / "source", args.seed)
    log.info("workload: %s", workload.describe())
    runners = {"filestream": run_filestream, "openmsistream": run_openmsistream, "ceiling": run_ceiling}
    runs: dict[str, Run] = {}
    for system in (system for system in SYSTEMS if system in systems):
        log.info("running %s", system)
        runs[system] = runners[system](workload, fresh_dir(work / system), args.partitions)
        prune(work / system)
    print("\n" + report(workload, runs, args.partitions, load), flush=True)
    if args.profile:
        raw = work / "worker-profile.txt"
        log.info("running filestream again under py-spy")
        run_filestream(workload, fresh_dir(work / "filestream-profiled"), args.partitions, profile_path=raw)
        prune(work / "filestream-profiled")
        if raw.exists():
            print(f"\nwhere the worker's time goes ({raw}):\n{profile_report(raw)}", flush=True)
    shutil.rmtree(workload.source_dir)


if __name__ == "__main__":
    main()
