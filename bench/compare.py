"""Side-by-side benchmark: filestream, OpenMSIStream 1.8.8 and the bare-Kafka ceiling on one workload and broker.

    .venv/bin/python -m bench.compare [--quick] [--broker kafka|tansu] [--only filestream,openmsistream,ceiling]
                                      [--partitions 8] [--seed 1] [--stall-timeout 180] [--profile]

The workload is seeded and generated once: many small files, some medium, one large
(``full``: 500 x 64 KiB + 40 x 4 MiB + 1 x 512 MiB; ``--quick``: 50 x 64 KiB + 8 x 4 MiB +
1 x 32 MiB).  Each system runs on a fresh embedded stack of the chosen broker (Apache Kafka by
default, with Kafka's default segment sizes so nothing is compacted within a run), on a topic
of ``--partitions`` partitions created with filestream's ``max.message.bytes``, with 1 MiB chunks:

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

A system whose progress stops for ``--stall-timeout`` seconds (OpenMSIStream's downloader
sometimes waits forever for a chunk) is reported as stalled, with what it had delivered; a
system that fails is reported with its error; the others run all the same.

Prints, per stage and system, seconds, MB/s (10^6 bytes/s) and files/s; peak RSS and CPU
seconds of every process (workers and consumers from the start of the timed run); the
figures that compare them (throughput ratios, S3 lag, CPU per GB, bytes the broker received
per payload byte, counted from the records on every topic after the run, and peak RSS);
and writes the table (``compare.txt``) and a chart of MB/s per stage and system
(``compare.png``) into ``var/bench/compare/``.  ``--profile`` adds one more filestream run
with py-spy sampling the worker (skipped if py-spy is missing) and prints where the
worker's time goes.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Queue

from bench.common import (
    BENCH_VAR,
    CHUNK_SIZE,
    GB,
    MB,
    STAGES,
    STALL_TIMEOUT,
    WORKLOADS,
    Arrivals,
    KiB,
    MiB,
    ProcessStats,
    ProgressClock,
    Stall,
    Workload,
    add_broker_option,
    bench_env,
    bench_stack,
    create_topic,
    format_table,
    fresh_dir,
    load_average,
    process_stats,
    prune,
    stack_stats,
    timed_upload,
    topic_bytes,
    verify_delivery,
    wait_for_group_coordinator,
)
from devstack.processes import ManagedProcess, child_env
from devstack.testing import sha256_file
from devstack.worker import PROJECT_ROOT, Worker

log = logging.getLogger("bench.compare")

TOPIC = "bench-chunks"
SYSTEMS = ("filestream", "openmsistream", "ceiling")
# The ceiling's consumer writes nothing: its "received" is "consumed".
STAGE_TITLES = {**STAGES, "received": "on disk (ceiling: consumed)"}

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


@dataclass
class Run:
    system: str
    stages_measured: tuple[str, ...]  # the stages of STAGES this system has
    consumer: str  # the process that receives: its CPU per GB and peak RSS are compared
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds from the start
    processes: dict[str, ProcessStats] = field(default_factory=dict)
    verdict: str = ""
    problem: str = ""  # "stalled …" or "failed: …": the stages not reached were never reached
    broker_bytes: dict[str, int] = field(default_factory=dict)  # upload / changelogs / events → bytes


def topic_groups(sizes: Mapping[str, int], upload_topic: str) -> dict[str, int]:
    """Bytes per kind of topic: what the uploader wrote, the tables' changelogs, and every other topic."""
    groups = {"upload": 0, "changelogs": 0, "events": 0}
    for topic, size in sizes.items():
        kind = "upload" if topic == upload_topic else "changelogs" if topic.endswith("-changelog") else "events"
        groups[kind] += size
    return groups


# --- filestream ---------------------------------------------------------------------------


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


def consume_records(
    bootstrap: str, partitions: int, expected: int, stall_timeout: float, ready: Event, results: Queue
) -> None:
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
                elif time.monotonic() - last_progress > stall_timeout:
                    results.put(("stalled", time.monotonic(), f"{received} of {expected} records"))
                    return
            results.put(("received", time.monotonic(), _own_stats() - before))
        finally:
            await consumer.stop()

    asyncio.run(consume())


def run_ceiling(workload: Workload, work: Path, partitions: int, broker: str, stall_timeout: float) -> Run:
    run = Run("aiokafka ceiling", ("sent", "received"), "consumer")
    with bench_stack(work / "logs", broker) as stack:
        bootstrap = stack.bootstrap_servers
        asyncio.run(create_topic(bootstrap, TOPIC, partitions))
        context = multiprocessing.get_context("spawn")
        producer_ready, consumer_ready, go = context.Event(), context.Event(), context.Event()
        results = context.Queue()
        children = [
            context.Process(
                target=consume_records,
                args=(bootstrap, partitions, workload.record_count, stall_timeout, consumer_ready, results),
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
                    run.problem = f"stalled for {stall_timeout:.0f} s at {finished - started:.0f} s: {detail}"
                    continue
                run.stages[stage] = finished - started
                run.processes["producer" if stage == "sent" else "consumer"] = detail
            run.processes["broker"] = stack_stats(stack)["broker"] - stack_before["broker"]
            if not run.problem:
                run.verdict = f"{workload.record_count}/{workload.record_count} records consumed"
        finally:
            for child in children:
                child.join(10)
                if child.is_alive():
                    child.kill()
        run.broker_bytes = topic_groups(asyncio.run(topic_bytes(bootstrap)), TOPIC)
    return run


# --- report -------------------------------------------------------------------------------


def stage_cell(workload: Workload, run: Run, stage: str) -> str:
    if stage not in run.stages_measured:
        return "—"
    if stage not in run.stages:
        return "not reached"
    seconds = run.stages[stage]
    return (
        f"{seconds:6.1f} s {workload.total_bytes / seconds / MB:6.1f} MB/s {len(workload.sizes) / seconds:6.1f} files/s"
    )


def figures(workload: Workload, runs: list[Run]) -> list[list[str]]:
    """The comparison, one row per figure, one column per system ('—' where it does not apply or was not reached)."""
    by_system = {run.system: run for run in runs}
    openmsistream = by_system.get("OpenMSIStream 1.8.8")
    ceiling = by_system.get("aiokafka ceiling")

    def ratio(numerator: Run | None, numerator_stage: str, denominator: Run | None, denominator_stage: str) -> float:
        """Throughput of ``denominator`` at its stage ÷ that of ``numerator`` at its stage, via their times."""
        if numerator is None or denominator is None:
            return float("nan")
        if numerator_stage not in numerator.stages or denominator_stage not in denominator.stages:
            return float("nan")
        return numerator.stages[numerator_stage] / denominator.stages[denominator_stage]

    def text(value: float, form: str) -> str:
        return "—" if value != value else form.format(value)  # NaN: not applicable or not reached

    def bytes_cell(run: Run) -> str:
        if not run.broker_bytes:
            return "—"
        parts = " + ".join(
            f"{kind} {size / workload.total_bytes:.2f}" for kind, size in run.broker_bytes.items() if size
        )
        return f"{sum(run.broker_bytes.values()) / workload.total_bytes:.2f}" + (f" ({parts})" if parts else "")

    def consumer(run: Run) -> ProcessStats | None:
        return run.processes.get(run.consumer)

    return [
        [
            "on disk: throughput ÷ OpenMSIStream 1.8.8's",
            *(text(ratio(openmsistream, "received", run, "received"), "{:.2f} x") for run in runs),
        ],
        [
            "on disk: throughput ÷ the aiokafka ceiling's (consumed)",
            *(text(100 * ratio(ceiling, "received", run, "received"), "{:.0f} %") for run in runs),
        ],
        [
            "valid in S3, last file: time ÷ time of the last file on disk",
            *(text(ratio(run, "in_s3", run, "received"), "{:.2f}") for run in runs),
        ],
        [
            "receiving process: CPU-seconds per GB delivered",
            *(
                f"{stats.cpu_seconds / (workload.total_bytes / GB):.1f} s ({run.consumer})"
                if (stats := consumer(run)) and not run.problem
                else "—"
                for run in runs
            ),
        ],
        ["bytes the broker received per payload byte", *(bytes_cell(run) for run in runs)],
        [
            "receiving process: peak RSS",
            *(f"{stats.peak_rss / MB:.0f} MB ({run.consumer})" if (stats := consumer(run)) else "—" for run in runs),
        ],
    ]


def report(workload: Workload, runs: list[Run], partitions: int, broker: str, load: float) -> str:
    lines = [
        f"workload: {workload.describe()}; broker: {broker}; {partitions} partitions; "
        f"{CHUNK_SIZE // KiB} KiB chunks; load average before: {load:.2f}",
        "",
        format_table(
            ["stage (from the upload's start)", *(run.system for run in runs)],
            [[title, *(stage_cell(workload, run, stage) for run in runs)] for stage, title in STAGE_TITLES.items()],
        ),
        "",
        format_table(["figure", *(run.system for run in runs)], figures(workload, runs)),
        "",
        format_table(
            ["process", "system", "peak RSS", "CPU"],
            [
                [name, run.system, f"{stats.peak_rss / MB:.0f} MB", f"{stats.cpu_seconds:.1f} s"]
                for run in runs
                for name, stats in run.processes.items()
            ],
            text_columns=2,
        ),
        "",
        *(f"{run.system}: " + "; ".join(part for part in (run.verdict, run.problem) if part) for run in runs),
    ]
    return "\n".join(lines)


def write_chart(workload: Workload, runs: list[Run], broker: str, path: Path) -> None:
    """Bars of MB/s per stage (groups) and system (bars); a stage a system did not reach is marked, not drawn."""
    import matplotlib  # only this report needs it; the import takes a second

    matplotlib.use("Agg")
    from matplotlib import pyplot

    stages = list(STAGES)
    figure, axes = pyplot.subplots(figsize=(7.5, 3.6), dpi=100)
    width = 0.8 / max(1, len(runs))
    for number, run in enumerate(runs):
        positions = [stage + (number - (len(runs) - 1) / 2) * width for stage in range(len(stages))]
        rates = [workload.total_bytes / run.stages[stage] / MB if stage in run.stages else 0.0 for stage in stages]
        bars = axes.bar(positions, rates, width, label=run.system)
        for bar, stage, rate in zip(bars, stages, rates, strict=True):
            if stage not in run.stages_measured:
                continue
            label = (
                f"{rate:.0f}" if stage in run.stages else "stalled" if run.problem.startswith("stalled") else "failed"
            )
            axes.annotate(label, (bar.get_x() + bar.get_width() / 2, rate), ha="center", va="bottom", fontsize=8)
    axes.set_xticks(range(len(stages)), [STAGE_TITLES[stage] for stage in stages])
    axes.set_ylabel("MB/s (10^6 bytes/s)")
    axes.set_title(f"{workload.describe()}; broker: {broker}", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller workload")
    add_broker_option(parser)
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT,
        help=f"seconds without progress after which a system is reported as stalled (default {STALL_TIMEOUT:.0f})",
    )
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
    log.info("workload: %s; broker: %s", workload.describe(), args.broker)
    runners = {"filestream": run_filestream, "openmsistream": run_openmsistream, "ceiling": run_ceiling}
    titles = {"filestream": "filestream", "openmsistream": "OpenMSIStream 1.8.8", "ceiling": "aiokafka ceiling"}
    runs: list[Run] = []
    for system in (system for system in SYSTEMS if system in systems):
        log.info("running %s", system)
        try:
            runs.append(
                runners[system](workload, fresh_dir(work / system), args.partitions, args.broker, args.stall_timeout)
            )
        except Exception as exc:  # one system failing must not cost the others' figures
            log.exception("%s failed", system)
            runs.append(Run(titles[system], (), "", problem=f"failed: {type(exc).__name__}: {exc}"))
        prune(work / system)
    text = report(workload, runs, args.partitions, args.broker, load)
    (work / "compare.txt").write_text(text + "\n")
    write_chart(workload, runs, args.broker, work / "compare.png")
    print(f"\n{text}\n\ntable: {work / 'compare.txt'}; chart: {work / 'compare.png'}", flush=True)
    if args.profile:
        raw = work / "worker-profile.txt"
        log.info("running filestream again under py-spy")
        run_filestream(
            workload, fresh_dir(work / "filestream-profiled"), args.partitions, args.broker, args.stall_timeout, raw
        )
        prune(work / "filestream-profiled")
        if raw.exists():
            print(f"\nwhere the worker's time goes ({raw}):\n{profile_report(raw)}", flush=True)
    shutil.rmtree(workload.source_dir)


if __name__ == "__main__":
    main()
