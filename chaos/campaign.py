"""The fault campaign: scenarios run one after another on one stack, then every file is checked.

Each scenario sends its own files under its own source name (``<scenario>/<path>``), injects
its faults, and waits until its files are delivered or nothing has changed for the stall
timeout.  The first six share one pipeline with one worker; the others each run their own
pipelines (own app id, topics, bucket, output dir, workers) on the same stack, and
``broker-kill`` also its own 3-node Apache Kafka cluster.  Every pipeline reaches S3 through
a gate of its own (``chaos/s3_gate.py``).  At the end, after every fault of every scenario,
each expected file is read back from its output directory and from S3 and compared with what
was sent; files named by hostile records are searched for outside the output directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bench.common import format_table
from chaos.records import CORRUPTIONS, header_bomb
from chaos.s3_gate import S3Gate
from devstack.stack import DEFAULT_BROKER, DevStack
from devstack.testing import (
    ChildProcess,
    Message,
    as_message,
    as_messages,
    file_messages,
    make_chunks,
    pipeline_env,
    produce_chunks,
    s3_client,
    s3_sha256,
    upload_command,
    view_rows,
    wait_for_split,
)
from devstack.worker import Worker
from settings import load_settings

log = logging.getLogger(__name__)

KiB, MiB = 1024, 1024**2
CHUNK = 64 * KiB  # crafted records: small chunks make many records per file
IN_FLIGHT = ("ready", "pending", "transferring", "done")  # transfer states before valid
# A worker that dies on its own is restarted on its data dir this often, then left dead: a
# record that kills every worker reading it (a poison pill) must not keep the campaign busy.
RESTARTS_AFTER_DEATH = 2
# Faust's line for an agent (or service) that raised: Faust restarts the agent, the record is skipped.
AGENT_CRASH = re.compile(r"\[\^-*([^\]]+)\]: Crashed reason=(.*)$")
# The last error a dying worker logs, shutdown noise (cancellations) aside.
LAST_WORDS = re.compile(r"\[(?:CRITICAL|ERROR)\](?!.*CancelledError)")
# Two fresh workers split the partitions within seconds; one that stays unready this long is stuck.
SPLIT_TIMEOUT = 120.0
# (chunk_count, index) of the header bombs.
BOMBS = ((4 * 10**7, 0), (10**9, 0), (10**12, 0), (2**32 + 2, 2**32 + 1))
T = TypeVar("T")


@dataclass(frozen=True)
class Intensity:
    """How hard the campaign hits: the quick one runs in the test suite, the long one by hand."""

    worker_kills: int
    worker_kill_files: int
    s3_outages: int
    s3_outage_seconds: tuple[float, float]
    uploader_kills: int
    uploader_files: int
    corrupted_files: int
    stale_files: int
    stall_timeout: float
    broker_kill_files: int
    broker_down_seconds: float
    two_worker_rounds: int  # rounds of two-workers-kill, each on a pipeline of its own
    two_worker_small_files: int  # besides four of 16 MiB
    kill_loop_kills: int
    kill_loop_files: int
    s3_down_seconds: float  # S3 stays down this long after the files are on disk
    bomb_neighbours: int  # normal files sent with the header bombs, and again after the restart


QUICK = Intensity(
    worker_kills=1,
    worker_kill_files=24,
    s3_outages=1,
    s3_outage_seconds=(2.0, 4.0),
    uploader_kills=1,
    uploader_files=24,
    corrupted_files=20,
    stale_files=8,
    stall_timeout=60.0,
    broker_kill_files=30,
    broker_down_seconds=10.0,
    two_worker_rounds=1,
    two_worker_small_files=196,
    kill_loop_kills=4,
    kill_loop_files=160,
    s3_down_seconds=3.0,
    bomb_neighbours=8,
)
LONG = Intensity(
    worker_kills=6,
    worker_kill_files=160,
    s3_outages=3,
    s3_outage_seconds=(3.0, 20.0),
    uploader_kills=4,
    uploader_files=120,
    corrupted_files=120,
    stale_files=40,
    stall_timeout=180.0,
    broker_kill_files=120,
    broker_down_seconds=30.0,
    two_worker_rounds=5,  # a fault that strikes one round in two goes unseen with probability 1/32
    two_worker_small_files=196,
    kill_loop_kills=12,
    kill_loop_files=640,
    s3_down_seconds=20.0,
    bomb_neighbours=24,
)


@dataclass(frozen=True)
class Expected:
    """One file a pipeline must deliver: in S3, and in its output directory unless ``on_disk`` is False."""

    output_dir: Path
    bucket: str
    source: str
    path: str
    data: bytes
    on_disk: bool = True

    def disk_bytes(self) -> bytes | None:
        try:
            return (self.output_dir / self.source / self.path).read_bytes()
        except OSError:  # missing, or a directory / a file in the way
            return None


@dataclass
class Scenario:
    name: str  # also the source name of its files
    faults: str = ""
    expected: list[Expected] = field(default_factory=list)
    escape_root: Path | None = None  # hostile names: searched for under it, outside own_folder
    own_folder: Path | None = None
    escape_names: set[str] = field(default_factory=set)
    escape_paths: set[Path] = field(default_factory=set)  # places outside the work dir hostile names point at
    untouchable: dict[Path, bytes] = field(
        default_factory=dict
    )  # files outside the output dir that must keep their bytes
    seconds: float = 0.0
    deaths: list[str] = field(default_factory=list)  # workers that died on their own, with what their logs said
    problems: list[str] = field(default_factory=list)  # checks other than delivery that failed
    notes: list[str] = field(default_factory=list)  # evidence and remarks
    not_run: str = ""  # why the scenario could not run on this stack

    def expect(self, pipeline: Pipeline, files: Mapping[str, bytes], *, on_disk: bool = True) -> list[Expected]:
        items = [
            Expected(pipeline.output, pipeline.settings.s3_bucket, self.name, path, data, on_disk)
            for path, data in files.items()
        ]
        self.expected += items
        return items


@dataclass
class Outcome:
    scenario: str
    faults: str
    expected: int
    delivered: int  # byte-identical in S3 and, where expected there, in the output dir
    lost: int  # missing from one place or both, wrong in neither
    corrupt: int  # wrong bytes in one place or both
    escaped: int  # written outside the output dir (or outside its source's folder in it)
    deaths: int  # workers that died on their own
    problems: int  # failed checks besides delivery (a bomb accepted, a conflict not reported, …)
    seconds: float
    notes: list[str]
    not_run: str = ""

    @property
    def ok(self) -> bool:
        if self.not_run:
            return True
        return self.delivered == self.expected and not (
            self.lost or self.corrupt or self.escaped or self.deaths or self.problems
        )


class Pipeline:
    """One isolated pipeline on the campaign's stack: its own app id, topics, bucket, dirs, S3 gate and workers.

    ``broker_stack`` puts it on another stack's broker (S3 stays the campaign's, so every file is
    judged in one place).  Workers have names (``worker``, ``a``, ``b``); each start on an empty
    data dir gets a new numbered one (``a-1``, ``a-2``, …).
    """

    def __init__(self, stack: DevStack, work: Path, *, broker_stack: DevStack | None = None, **overrides: str) -> None:
        self.stack = stack
        self.work = work
        self.gate = S3Gate(stack.s3.port)
        self.env = pipeline_env(stack, work, AWS_ENDPOINT_URL_S3=self.gate.url, FILESTREAM_LOG_LEVEL="info")
        if broker_stack is not None:
            broker_env = broker_stack.env()
            self.env.update({name: broker_env[name] for name in ("FILESTREAM_BROKER", "FILESTREAM_DEV_BROKER")})
        self.env.update(overrides)
        self.settings = load_settings(self.env)
        self.output = self.settings.output_dir
        self.workers: dict[str, Worker] = {}
        self.starts: Counter[str] = Counter()
        self.deaths: Counter[str] = Counter()
        self.down: set[str] = set()  # killed or given up on: not to be restarted by watch()
        self.log_offsets: dict[Path, int] = {}  # how far watch() has read each worker log
        self.start_problems: list[str] = []  # workers that did not get ready, for watch() to report

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.gate.go_down()

    def open(self, names: tuple[str, ...] = ("worker",), *, s3_up: bool = True, wait: bool = True) -> bool:
        """Start the workers (S3 reachable or not); with ``wait``, whether every one of them got ready."""
        if s3_up:
            self.gate.come_back()
        for name in names:
            self.start_worker(name, fresh_data_dir=True, wait=False)
        return all([self.wait_ready(name) for name in names]) if wait else True

    def start_worker(self, name: str = "worker", *, fresh_data_dir: bool, wait: bool = True) -> None:
        """Start (or restart) a worker; ``fresh_data_dir``: restore from the changelog only."""
        if fresh_data_dir or not self.starts[name]:
            self.starts[name] += 1
        data_dir = self.work / f"{name}-{self.starts[name]}"
        self.workers[name] = Worker(self.env, data_dir, name=f"{name}-{self.starts[name]}").start()
        self.down.discard(name)
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 90.0) -> bool:
        """Until the worker owns partitions of the chunk topic; False if it exits or never gets there.

        A worker that does not is a failure of the scenario running (recorded by the next :meth:`watch`).
        """
        worker = self.workers[name]
        try:
            worker.wait_ready(timeout=timeout)
            return True
        except RuntimeError as exc:
            health = worker.health()
            log.warning("%s; its health view says %s", exc, health)
            reason = str(exc).splitlines()[0].rstrip(":")
            self.start_problems.append(f"{reason}, owning no partition of the chunk topic (health view: {health})")
            return False

    def kill_worker(self, name: str = "worker") -> None:
        self.workers[name].kill()
        self.down.add(name)

    def live_workers(self) -> list[Worker]:
        return [worker for worker in self.workers.values() if worker.process and worker.process.alive()]

    def watch(self, scenario: Scenario) -> None:
        """Record agent crashes, workers that died on their own or never got ready; restart a dead one a few times."""
        scenario.problems += self.start_problems
        self.start_problems.clear()
        for name, worker in list(self.workers.items()):
            crashes = self._new_crashes(worker)
            scenario.problems += [f"{worker.name}: agent {agent} crashed: {reason}" for agent, reason in crashes]
            if name in self.down or worker.process is None or worker.process.alive():
                continue
            last_words = [line for line in worker.log_tail(400).splitlines() if LAST_WORDS.search(line)]
            scenario.deaths.append(
                f"{worker.name} died on its own (exit {worker.process.popen.returncode})"
                + (f": {last_words[-1].strip()[:300]}" if last_words else "")
            )
            self.deaths[name] += 1
            if self.deaths[name] > RESTARTS_AFTER_DEATH:
                self.down.add(name)
                log.warning("%s died %d times: left dead", worker.name, self.deaths[name])
            else:
                log.warning("%s died on its own: restarting it on its data dir", worker.name)
                self.start_worker(name, fresh_data_dir=False, wait=False)

    def _new_crashes(self, worker: Worker) -> list[tuple[str, str]]:
        """(agent, reason) of every crash its log reports since the last look, cancellations (shutdown) left out."""
        path = worker.process.log_path if worker.process else None
        if path is None or not path.exists():
            return []
        with path.open("rb") as log_file:
            log_file.seek(self.log_offsets.get(path, 0))
            text = log_file.read()
            self.log_offsets[path] = log_file.tell()
        crashes = []
        for line in text.decode(errors="replace").splitlines():
            match = AGENT_CRASH.search(line)
            if match and not match.group(2).startswith("CancelledError"):
                crashes.append((match.group(1).strip(), match.group(2).strip()[:300]))
        return crashes

    def can_progress(self) -> bool:
        return bool(self.live_workers()) or any(name not in self.down for name in self.workers)

    def produce(self, records: list[Message]) -> None:
        asyncio.run(produce_chunks(self.env, records))

    def upload(self, directory: Path, source: str, *options: str, tag: str = "") -> ChildProcess:
        """The upload command; uploads running at the same time need their own ``tag`` (their own registry)."""
        name = f"{source}{'-' + tag if tag else ''}"
        return upload_command(
            self.env, directory, source, self.work / f"uploader-{name}", self.work / f"upload-{name}.log", *options
        )

    def transfers(self, source: str, state: str | None = None) -> dict[str, dict]:
        """The source's S3 transfer records (in ``state``), by path, from every worker that answers."""
        rows: list[dict] = []
        path = "/filestream/transfers/" + (f"?state={state}" if state else "")
        for worker in self.live_workers():
            rows += view_rows(worker, path, "transfers") or []
        prefix = f"{source}/"
        return {row["file_id"].removeprefix(prefix): row for row in rows if row["file_id"].startswith(prefix)}

    def file_view(self, source: str, path: str) -> tuple[int, dict[str, Any] | None]:
        """``/filestream/file/SOURCE/PATH`` from the first live worker answering: (HTTP status, JSON or None).

        (0, None) when no worker answers.
        """
        for worker in self.live_workers():
            try:
                return 200, worker.get_json(f"/filestream/file/{quote(source)}/{quote(path)}")
            except urllib.error.HTTPError as exc:
                return exc.code, None
            except (OSError, ValueError):
                continue
        return 0, None

    def output_bytes(self, source: str, path: str) -> bytes | None:
        try:
            return (self.output / source / path).read_bytes()
        except OSError:
            return None


@dataclass
class Campaign:
    """The stack every scenario runs on, the work dir, and the pipeline the first six scenarios share."""

    stack: DevStack
    work: Path
    shared: Pipeline | None = None

    def shared_pipeline(self) -> Pipeline:
        if self.shared is None:
            self.shared = Pipeline(self.stack, self.work / "shared")
            self.shared.open()
        return self.shared

    def pipeline(self, name: str, *, broker_stack: DevStack | None = None, **overrides: str) -> Pipeline:
        return Pipeline(self.stack, self.work / name, broker_stack=broker_stack, **overrides)

    def close(self) -> None:
        if self.shared is not None:
            self.shared.__exit__()


def wait_for_delivery(
    pipeline: Pipeline, scenario: Scenario, stall_timeout: float, items: list[Expected] | None = None
) -> None:
    """Until every item (default: every file the scenario expects of this pipeline) is delivered.

    Delivered: valid in S3 with the expected hash and, if expected there, in the output dir
    with the expected bytes.  Gives up after ``stall_timeout`` seconds without progress, or
    when no worker is left to make any.  Workers that die meanwhile are recorded.
    """
    if items is None:
        items = [item for item in scenario.expected if item.output_dir == pipeline.output]
    wanted = {item.path: (item, hashlib.sha256(item.data).hexdigest()) for item in items}
    done: set[str] = set()
    last_progress = time.monotonic()
    while len(done) < len(wanted):
        pipeline.watch(scenario)
        valid = {path: row["file_hash"] for path, row in pipeline.transfers(scenario.name, "valid").items()}
        for path, (item, digest) in wanted.items():
            if path in done or valid.get(path) != digest:
                continue
            if not item.on_disk or pipeline.output_bytes(item.source, path) == item.data:
                done.add(path)
                last_progress = time.monotonic()
        stalled = time.monotonic() - last_progress > stall_timeout
        if stalled or not pipeline.can_progress():
            pipeline.watch(scenario)
            missing = sorted(set(wanted) - done)
            reason = f"after {stall_timeout:.0f}s without progress" if stalled else "with no worker left"
            log.error("%s: %d files not delivered %s, e.g. %s", scenario.name, len(missing), reason, missing[:5])
            return
        time.sleep(0.2)
    pipeline.watch(scenario)


def write_sources(directory: Path, files: Mapping[str, bytes]) -> None:
    for path, data in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)


def random_files(rng: random.Random, prefix: str, count: int, smallest: int, largest: int) -> dict[str, bytes]:
    return {f"{prefix}-{number:03d}.bin": rng.randbytes(rng.randint(smallest, largest)) for number in range(count)}


def _split(items: list, parts: int) -> list[list]:
    return [items[index::parts] for index in range(parts)]


def _wait_for(condition: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """The first truthy value of ``condition()``, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def _not_on_disk(pipeline: Pipeline, scenario: Scenario, files: Mapping[str, bytes]) -> int:
    return sum(pipeline.output_bytes(scenario.name, path) != data for path, data in files.items())


# --- scenarios on the shared pipeline -------------------------------------------------------


def worker_kills(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """SIGKILL the worker at random moments of an upload; restart it on its data dir or on an empty one."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("worker-kills")
    files = random_files(rng, "kill", intensity.worker_kill_files, 1, 3 * MiB)
    scenario.expect(pipeline, files)
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    upload = pipeline.upload(sources, scenario.name)
    restarts = {True: 0, False: 0}
    not_yet_on_disk = []

    # The first kill once files have started to arrive, so that some are done and some in flight.
    _wait_for(lambda: _not_on_disk(pipeline, scenario, files) < len(files), 60)
    for kill in range(intensity.worker_kills):
        time.sleep(rng.uniform(0.0, 0.5) if kill == 0 else rng.uniform(0.5, 3.0))
        not_yet_on_disk.append(_not_on_disk(pipeline, scenario, files))
        pipeline.kill_worker()
        fresh = kill % 2 == 0  # the harder case first: nothing on disk, everything from the changelog
        restarts[fresh] += 1
        pipeline.start_worker(fresh_data_dir=fresh)
    if upload.wait() != 0:
        scenario.notes.append(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
    scenario.faults = (
        f"SIGKILL x{intensity.worker_kills} with {'/'.join(map(str, not_yet_on_disk))} files not yet on disk; "
        f"restarted on an empty data dir x{restarts[True]}, on its own x{restarts[False]}"
    )
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def s3_outages(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """The S3 endpoint goes down while transfers run (multipart ones included) and comes back."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("s3-outages")
    files = {
        **random_files(rng, "multipart", 2 * intensity.s3_outages, 9 * MiB, 20 * MiB),
        **random_files(rng, "single", 10 * intensity.s3_outages, 1, 2 * MiB),
    }
    scenario.expect(pipeline, files)
    downtime, in_flight, reset = 0.0, 0, 0
    for batch in _split(list(files.items()), intensity.s3_outages):
        pipeline.produce(file_messages(dict(batch), source=scenario.name, chunk_size=MiB))
        transferring = _wait_for(
            lambda: [path for path, row in pipeline.transfers(scenario.name).items() if row["state"] in IN_FLIGHT], 60
        )
        # Down while a request is on the wire, so that one breaks in the middle.
        _wait_for(lambda: pipeline.gate.open_connections, 10, interval=0.001)
        reset += pipeline.gate.go_down()
        log.info("S3 down with %d transfers in flight", len(transferring or ()))
        seconds = rng.uniform(*intensity.s3_outage_seconds)
        time.sleep(seconds)
        pipeline.gate.come_back()
        downtime += seconds
        in_flight += len(transferring or ())
    scenario.faults = (
        f"{intensity.s3_outages} outages, {downtime:.0f} s down; {in_flight} transfers in flight, {reset} requests cut"
    )
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def uploader_kills(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """SIGKILL the upload command mid-upload, run it again: its registry makes it resume."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("uploader-kills")
    files = random_files(rng, "upload", intensity.uploader_files, 1, 4 * MiB)
    scenario.expect(pipeline, files)
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    # Small chunks keep the upload busy long enough to be caught in the middle.
    small_chunks = ("--chunk-size", "64KiB")
    mid_upload = 0
    for _ in range(intensity.uploader_kills):
        upload = pipeline.upload(sources, scenario.name, *small_chunks)
        time.sleep(rng.uniform(1.5, 3.0))  # the command spends its first second starting Python and Faust
        mid_upload += not upload.finished()
        upload.kill()
    final = pipeline.upload(sources, scenario.name, *small_chunks)
    if final.wait() != 0:
        scenario.notes.append(f"the resumed upload failed ({final.returncode}):\n{final.log_tail()}")
    scenario.faults = f"SIGKILL x{intensity.uploader_kills} ({mid_upload} mid-upload), then a resumed run"
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def corrupted_duplicated_reordered(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Good chunks in shuffled order, some sent twice or three times, among corrupted copies and junk."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("corrupt-dup-reorder")
    files = random_files(rng, "mixed", intensity.corrupted_files, 1, 8 * CHUNK)
    scenario.expect(pipeline, files)
    good: list[Message] = []
    bad: list[Message] = []
    after_first_good: list[tuple[bytes, Message]] = []  # records only harmless once the file's state exists
    injected: dict[str, int] = dict.fromkeys(CORRUPTIONS, 0)
    duplicates = 0
    for path, data in files.items():
        for chunk in make_chunks(data, source=scenario.name, path=path, chunk_size=CHUNK, generation=1):
            copies = rng.choice((1, 1, 2, 3))
            duplicates += copies - 1
            good += [as_message(chunk)] * copies
            if rng.random() < 0.4:
                kind = rng.choice(list(CORRUPTIONS))
                injected[kind] += 1
                record = CORRUPTIONS[kind](chunk, rng)
                if kind == "contradicting header":
                    # As the first record of a file it would define the file (its hash is sound);
                    # a sender can only contradict what the worker already holds.
                    after_first_good.append((as_message(chunk)[0], record))
                else:
                    bad.append(record)
    records = good + bad
    rng.shuffle(records)
    good_values = {value for _, value in good}
    for key, record in after_first_good:
        first = next(
            index for index, (other_key, value) in enumerate(records) if other_key == key and value in good_values
        )
        records.insert(rng.randint(first + 1, len(records)), record)
    resent = rng.sample(good, k=min(len(good), 10))
    pipeline.produce(records)
    pipeline.produce(resent)  # after the files are (probably) complete
    parts = ", ".join(f"{count} {kind}" for kind, count in injected.items())
    scenario.faults = f"{len(set(good))} chunks shuffled, {duplicates + len(resent)} duplicates; {parts}"
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def stale_generations(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Older generations of a file after, around and before newer ones: the newest complete one wins."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("stale-generations")
    records: list[Message] = []
    expected: dict[str, bytes] = {}
    patterns: Counter[int] = Counter()
    for number in range(intensity.stale_files):
        path = f"versions-{number:03d}.bin"
        versions = {generation: rng.randbytes(rng.randint(CHUNK, 6 * CHUNK)) for generation in (1, 2, 3)}

        def chunks(generation: int, versions: dict[int, bytes] = versions, path: str = path) -> list[Message]:
            return as_messages(
                make_chunks(
                    versions[generation], source=scenario.name, path=path, chunk_size=CHUNK, generation=generation
                )
            )

        pattern = number % 4
        if pattern == 0:  # the older one after the newer one
            records += chunks(2) + chunks(1)
            expected[path] = versions[2]
        elif pattern == 1:  # the newer one in the middle of the older one
            older = chunks(1)
            half = len(older) // 2 or 1
            records += older[:half] + chunks(2) + older[half:]
            expected[path] = versions[2]
        elif pattern == 2:  # delivered, replaced by a newer one, then the first one again
            records += chunks(1) + chunks(2) + chunks(1)
            expected[path] = versions[2]
        else:  # a newer one complete, then part of an older one
            records += chunks(3) + chunks(2)[:1]
            expected[path] = versions[3]
        patterns[pattern] += 1
    scenario.expect(pipeline, expected)
    pipeline.produce(records)
    scenario.faults = (
        f"older after newer x{patterns[0]}, newer inside older x{patterns[1]}, "
        f"replaced then replayed x{patterns[2]}, older partial after newer x{patterns[3]}"
    )
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def hostile_paths(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Names that climb out of the output dir, and symlinks planted in it, among ordinary files."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("hostile-paths")
    files = random_files(rng, "ordinary", 3, 1, 3 * CHUNK)
    scenario.expect(pipeline, files)
    tag = f"escape-{rng.randrange(16**8):08x}"
    names = [
        (scenario.name, f"../{tag}-1.txt"),
        (scenario.name, f"../../{tag}-2.txt"),
        (scenario.name, f"deep/../../../{tag}-3.txt"),
        (scenario.name, f"/tmp/{tag}-4.txt"),  # noqa: S108  (a hostile absolute name, never opened)
        (scenario.name, f"C:/{tag}-5.txt"),
        (scenario.name, f"..\\..\\{tag}-6.txt"),
        ("..", f"{tag}-7.txt"),
        (scenario.name, f"nul\x00/../../{tag}-8.txt"),
        (scenario.name, f"./{tag}-9.txt"),
        (scenario.name, f"{'x' * 300}/../../{tag}-10.txt"),
    ]
    # Symlinks someone with access to the output dir left there: the worker must not write through them.
    outside = campaign.work / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"must stay as it is")
    scenario.untouchable[victim] = victim.read_bytes()
    planted = pipeline.output / scenario.name
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "linked-dir").symlink_to(outside, target_is_directory=True)
    (planted / "linked-file.txt").symlink_to(victim)
    names += [(scenario.name, f"linked-dir/{tag}-11.txt"), (scenario.name, "linked-file.txt")]

    records = file_messages(files, source=scenario.name, chunk_size=CHUNK)
    for source, path in names:
        records += as_messages(make_chunks(f"{tag} was here".encode(), source=source, path=path, chunk_size=CHUNK))
        target = Path(path) if path.startswith("/") else Path(os.path.normpath(pipeline.output / source / path))
        if not target.is_relative_to(campaign.work):
            scenario.escape_paths.add(target)
    rng.shuffle(records)
    scenario.escape_root, scenario.own_folder = campaign.work, planted
    scenario.escape_names = {f"{tag}-{number}.txt" for number in range(1, 12)}
    pipeline.produce(records)
    scenario.faults = f"{len(names) - 2} hostile names, 2 planted symlinks"
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


# --- scenarios with pipelines of their own --------------------------------------------------


def broker_kill(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """On a 3-node Kafka cluster (replication factor 3, min.insync.replicas 2), SIGKILL one broker mid-upload."""
    scenario = Scenario("broker-kill")
    if campaign.stack.kafka is None:
        scenario.not_run = "needs a 3-node Apache Kafka cluster: run with --broker kafka"
        return scenario
    files = {
        **random_files(rng, "small", intensity.broker_kill_files, 1, 2 * MiB),
        **random_files(rng, "large", 2, 9 * MiB, 16 * MiB),
    }
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    with (
        DevStack(log_dir=campaign.work / scenario.name / "cluster", broker="kafka", kafka_nodes=3) as cluster,
        campaign.pipeline(scenario.name, broker_stack=cluster, FILESTREAM_REPLICATION_FACTOR="3") as pipeline,
    ):
        kafka = cluster.kafka
        if kafka is None:
            raise RuntimeError("a kafka DevStack without a Kafka cluster")
        pipeline.open()
        scenario.expect(pipeline, files)
        upload = pipeline.upload(sources, scenario.name)
        _wait_for(lambda: _not_on_disk(pipeline, scenario, files) < len(files), 60)
        time.sleep(rng.uniform(0.0, 1.0))
        node = rng.randrange(kafka.nodes)
        not_on_disk = _not_on_disk(pipeline, scenario, files)
        kafka.kill_node(node)
        log.info("Kafka node %d SIGKILLed with %d files not on disk", node + 1, not_on_disk)
        time.sleep(intensity.broker_down_seconds)
        kafka.restart_node(node)
        if upload.wait() != 0:
            scenario.problems.append(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
        scenario.faults = (
            f"node {node + 1} of 3 SIGKILLed with {not_on_disk} of {len(files)} files not yet on disk, "
            f"restarted {intensity.broker_down_seconds:.0f} s later"
        )
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        scenario.notes += asyncio.run(under_replicated(cluster.bootstrap_servers, 3, 2))
    return scenario


async def under_replicated(bootstrap: str, replicas: int, min_insync: int) -> list[str]:
    """Topics with fewer replicas or a lower ``min.insync.replicas`` than asked for: a broker's loss could lose them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(topic for topic in await admin.list_topics() if not topic.startswith("__"))
        descriptions = await admin.describe_topics(topics)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics])
    finally:
        await admin.close()
    min_isr = {
        name: int(entry[1])
        for response in configs
        for _, _, _, name, entries in response.resources
        for entry in entries
        if entry[0] == "min.insync.replicas"
    }
    notes = []
    for description in descriptions:
        topic = description["topic"]
        found = min(len(partition["replicas"]) for partition in description["partitions"])
        if found < replicas or min_isr.get(topic, 1) < min_insync:
            notes.append(f"topic {topic}: {found} replicas, min.insync.replicas={min_isr.get(topic, '?')}")
    return notes


def two_workers_kill(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Two workers share 8 partitions 4 + 4; one is SIGKILLed about 3 s into an upload and stays dead."""
    scenario = Scenario("two-workers-kill")
    files = {
        **random_files(rng, "small", intensity.two_worker_small_files, 1, 512 * KiB),
        **random_files(rng, "large", 4, 16 * MiB, 16 * MiB),
    }
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    losing_rounds = []
    for round_number in range(1, intensity.two_worker_rounds + 1):
        with campaign.pipeline(f"{scenario.name}-{round_number}", FILESTREAM_PARTITIONS="8") as pipeline:
            if not pipeline.open(("a", "b")):
                pipeline.watch(scenario)
                continue
            try:
                split = wait_for_split(pipeline.live_workers(), 8, timeout=SPLIT_TIMEOUT)
            except TimeoutError as exc:
                health = {worker.name: worker.health() for worker in pipeline.live_workers()}
                scenario.problems.append(f"round {round_number}: {exc}; health views: {health}")
                continue
            items = scenario.expect(pipeline, files)
            upload = pipeline.upload(sources, scenario.name)
            time.sleep(3.0)
            victim = rng.choice(("a", "b"))
            pipeline.kill_worker(victim)
            killed = pipeline.workers[victim].name
            log.info("round %d: %s (partitions %s) SIGKILLed", round_number, killed, split.get(killed))
            if upload.wait() != 0:
                scenario.problems.append(f"round {round_number}: the upload command failed ({upload.returncode})")
            wait_for_delivery(pipeline, scenario, intensity.stall_timeout, items)
            missing = [item.path for item in items if not _delivered(pipeline, item)]
            if missing:
                losing_rounds.append(round_number)
                scenario.notes.append(
                    f"round {round_number}: {len(missing)} files not delivered after {killed} "
                    f"(partitions {split.get(killed)}) was killed; the survivor says: "
                    + "; ".join(_file_report(pipeline, scenario.name, path) for path in missing[:5])
                )
    scenario.faults = (
        f"{intensity.two_worker_rounds} rounds, 2 workers on 8 partitions (4 + 4), one SIGKILLed 3 s into the "
        f"upload of {len(files)} files; rounds losing files: {len(losing_rounds)}"
        + (f" ({', '.join(map(str, losing_rounds))})" if losing_rounds else "")
    )
    return scenario


def _delivered(pipeline: Pipeline, item: Expected) -> bool:
    digest = hashlib.sha256(item.data).hexdigest()
    row = pipeline.transfers(item.source, "valid").get(item.path)
    return bool(row and row["file_hash"] == digest) and (not item.on_disk or item.disk_bytes() == item.data)


def _file_report(pipeline: Pipeline, source: str, path: str) -> str:
    """What the file view says about one file, in a few words."""
    status, view = pipeline.file_view(source, path)
    if view is None:
        return f"{path}: file view {status or 'unanswered'}"
    assembly, transfer = view.get("assembly") or {}, view.get("transfer") or {}
    return (
        f"{path}: {assembly.get('status')} {assembly.get('chunks_received')}/{assembly.get('chunk_count')} chunks"
        f"{' (' + assembly['reason'] + ')' if assembly.get('reason') else ''}, transfer {transfer.get('state')}"
    )


def kill_loop(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Two workers on 8 partitions, SIGKILLed in turn while uploads run, each restarted at once."""
    scenario = Scenario("kill-loop")
    files = random_files(rng, "loop", intensity.kill_loop_files, 1, MiB)
    batches = _split(list(files.items()), intensity.kill_loop_kills)
    restarts = {True: 0, False: 0}
    with campaign.pipeline(scenario.name, FILESTREAM_PARTITIONS="8") as pipeline:
        if not pipeline.open(("a", "b")):
            pipeline.watch(scenario)
            scenario.faults = "none: the workers did not get ready"
            return scenario
        scenario.expect(pipeline, files)
        uploads = []
        for kill, batch in enumerate(batches):
            directory = campaign.work / "sources" / scenario.name / f"batch-{kill}"
            write_sources(directory, dict(batch))
            uploads.append(pipeline.upload(directory, scenario.name, tag=f"batch-{kill}"))
            time.sleep(rng.uniform(1.0, 3.0))
            victim = ("a", "b")[kill % 2]
            fresh = (kill // 2) % 2 == 0  # each worker: an empty data dir, then its own, in turn
            pipeline.kill_worker(victim)
            killed_at = time.monotonic()
            pipeline.start_worker(victim, fresh_data_dir=fresh)
            restarts[fresh] += 1
            log.info(
                "kill %d: %s restarted on %s, ready after %.1fs",
                kill + 1,
                pipeline.workers[victim].name,
                "an empty data dir" if fresh else "its data dir",
                time.monotonic() - killed_at,
            )
        for number, upload in enumerate(uploads):
            if upload.wait() != 0:
                scenario.problems.append(f"upload of batch {number} failed ({upload.returncode})")
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        missing = [item.path for item in scenario.expected if not _delivered(pipeline, item)]
        if missing:
            scenario.notes.append(
                f"{len(missing)} files not delivered; the workers say: "
                + "; ".join(_file_report(pipeline, scenario.name, path) for path in missing[:5])
            )
    scenario.faults = (
        f"{intensity.kill_loop_kills} SIGKILLs alternating between 2 workers on 8 partitions, during "
        f"{len(batches)} uploads of {len(files)} files; restarted on an empty data dir x{restarts[True]}, "
        f"on its own x{restarts[False]}"
    )
    return scenario


def s3_down_at_start(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """The worker starts while S3 is unreachable; the files complete; then S3 comes back."""
    scenario = Scenario("s3-down-at-start")
    files = {
        **random_files(rng, "multipart", 2, 9 * MiB, 16 * MiB),
        **random_files(rng, "single", 10, 1, 2 * MiB),
    }
    with campaign.pipeline(scenario.name) as pipeline:
        down_since = time.monotonic()
        pipeline.open(s3_up=False)
        scenario.expect(pipeline, files)
        pipeline.produce(file_messages(files, source=scenario.name, chunk_size=MiB))
        _wait_for(lambda: not _not_on_disk(pipeline, scenario, files), 60, interval=0.2)
        on_disk = len(files) - _not_on_disk(pipeline, scenario, files)
        time.sleep(intensity.s3_down_seconds)
        pipeline.gate.come_back()
        downtime = time.monotonic() - down_since
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        states = Counter(row["state"] for row in pipeline.transfers(scenario.name).values())
        scenario.notes.append(f"transfer states at the end: {dict(states)}")
        errors = [line for line in pipeline.workers["worker"].log_tail(2000).splitlines() if "Bucket" in line]
        if errors:
            scenario.notes.append(f"{len(errors)} log lines about the bucket, the last: {errors[-1].strip()[:300]}")
    scenario.faults = f"S3 unreachable from the worker's start for {downtime:.0f} s; {on_disk} files on disk meanwhile"
    return scenario


def header_bombs(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Small well-formed records claiming absurd chunk counts among normal files; then a restart on an empty dir."""
    scenario = Scenario("header-bombs")
    before = random_files(rng, "before", intensity.bomb_neighbours, 1, 4 * CHUNK)
    after = random_files(rng, "after", intensity.bomb_neighbours, 1, 4 * CHUNK)
    bombs = {
        f"bomb-{number}.bin": header_bomb(scenario.name, f"bomb-{number}.bin", count, index, rng)
        for number, (count, index) in enumerate(BOMBS)
    }
    with campaign.pipeline(scenario.name) as pipeline:
        pipeline.open()
        records = file_messages(before, source=scenario.name, chunk_size=CHUNK)
        for bomb in bombs.values():
            records.insert(rng.randint(0, len(records)), bomb)
        pipeline.produce(records)
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout, scenario.expect(pipeline, before))
        # A takeover worker starts on an empty data dir: a record that kills one kills it too.
        pipeline.kill_worker()
        pipeline.start_worker(fresh_data_dir=True)
        pipeline.produce(file_messages(after, source=scenario.name, chunk_size=CHUNK))
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout, scenario.expect(pipeline, after))
        pipeline.watch(scenario)
        for path in bombs:
            status, view = pipeline.file_view(scenario.name, path)
            state = (view or {}).get("assembly") or {}
            if state.get("status") in ("assembling", "completed"):
                scenario.problems.append(f"{path} accepted: {_file_report(pipeline, scenario.name, path)}")
            elif status:
                scenario.notes.append(
                    f"{path}: {'no state (404)' if status == 404 else _file_report(pipeline, scenario.name, path)}"
                )
        scenario.notes.append(f"rejected chunks counted by the last worker: {_rejections(pipeline)}")
    counts = ", ".join(f"{count:.0e}" if index == 0 else "2^32+2 at index 2^32+1" for count, index in BOMBS)
    scenario.faults = (
        f"{len(bombs)} header bombs (chunk_count {counts}) among {len(before)} files, a restart on an empty "
        f"data dir, {len(after)} files more"
    )
    return scenario


def _rejections(pipeline: Pipeline) -> str:
    """``filestream_chunks_rejected_total`` by reason, from the first live worker's /metrics."""
    for worker in pipeline.live_workers():
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as response:  # noqa: S310 (our worker)
                text = response.read().decode()
            found = re.findall(r'filestream_chunks_rejected_total\{reason="([^"]+)"\} ([0-9.e+]+)', text)
            return ", ".join(f"{reason} {float(value):.0f}" for reason, value in found) or "none"
    return "no worker answered"


def name_conflicts(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Two uploads under one source: ``x`` a file then a directory (``x/y``), ``dir`` a directory then a file."""
    scenario = Scenario("name-conflicts")
    first = {"x": rng.randbytes(999), "dir/z": rng.randbytes(1234), **random_files(rng, "first", 3, 1, 2 * CHUNK)}
    second = {"x/y": rng.randbytes(777), "dir": rng.randbytes(4321), **random_files(rng, "second", 3, 1, 2 * CHUNK)}
    conflicting = ("x/y", "dir")
    with campaign.pipeline(scenario.name) as pipeline:
        pipeline.open()
        first_items = scenario.expect(pipeline, first)
        second_items = scenario.expect(
            pipeline, {path: data for path, data in second.items() if path not in conflicting}
        )
        second_items += scenario.expect(pipeline, {path: second[path] for path in conflicting}, on_disk=False)
        for number, (files, items) in enumerate(((first, first_items), (second, second_items)), start=1):
            directory = campaign.work / "sources" / scenario.name / f"upload-{number}"
            write_sources(directory, files)
            upload = pipeline.upload(directory, scenario.name, tag=f"upload-{number}")
            if upload.wait() != 0:
                scenario.problems.append(f"upload {number} failed ({upload.returncode}):\n{upload.log_tail()}")
            wait_for_delivery(pipeline, scenario, intensity.stall_timeout, items)
        expect_reported_failed(pipeline, scenario, conflicting)
        pipeline.watch(scenario)
    scenario.faults = "x: a file, then x/y; dir/z, then dir: a file (two uploads of one source)"
    return scenario


def output_dir_is_a_file(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """The output directory is a regular file: every file fails to be written, and still reaches S3."""
    scenario = Scenario("output-dir-is-a-file")
    files = random_files(rng, "blocked", 4, 1, 3 * CHUNK)
    blocker = campaign.work / scenario.name / "output"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"a regular file where the output directory should be\n")
    with campaign.pipeline(scenario.name, FILESTREAM_OUTPUT_DIR=str(blocker)) as pipeline:
        pipeline.open()
        scenario.expect(pipeline, files, on_disk=False)
        pipeline.produce(file_messages(files, source=scenario.name, chunk_size=CHUNK))
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        expect_reported_failed(pipeline, scenario, list(files))
        pipeline.watch(scenario)
    scenario.faults = f"FILESTREAM_OUTPUT_DIR is a regular file; {len(files)} files sent"
    return scenario


def expect_reported_failed(pipeline: Pipeline, scenario: Scenario, paths: list[str] | tuple[str, ...]) -> None:
    """Each file must show as failed, with a reason, in the file view (all of them within 30 s)."""
    deadline = time.monotonic() + 30

    def failed(path: str) -> bool:
        _, view = pipeline.file_view(scenario.name, path)
        assembly = (view or {}).get("assembly") or {}
        return assembly.get("status") == "failed" and bool(assembly.get("reason"))

    for path in paths:
        reported = _wait_for(functools.partial(failed, path), max(0.0, deadline - time.monotonic()), interval=0.5)
        if reported:
            scenario.notes.append(_file_report(pipeline, scenario.name, path))
        else:
            scenario.problems.append(f"not reported as failed: {_file_report(pipeline, scenario.name, path)}")


SCENARIOS: dict[str, Callable[[Campaign, random.Random, Intensity], Scenario]] = {
    "worker-kills": worker_kills,
    "s3-outages": s3_outages,
    "uploader-kills": uploader_kills,
    "corrupt-dup-reorder": corrupted_duplicated_reordered,
    "stale-generations": stale_generations,
    "hostile-paths": hostile_paths,
    "broker-kill": broker_kill,
    "two-workers-kill": two_workers_kill,
    "kill-loop": kill_loop,
    "s3-down-at-start": s3_down_at_start,
    "header-bombs": header_bombs,
    "name-conflicts": name_conflicts,
    "output-dir-is-a-file": output_dir_is_a_file,
}
SHARED_PIPELINE_SCENARIOS = tuple(list(SCENARIOS)[:6])


# --- verdict ------------------------------------------------------------------------------


def _escaped_files(scenario: Scenario) -> Iterator[Path]:
    """Files named by the scenario's hostile records anywhere under the campaign's work dir but its source's
    folder of the output dir (another source's folder counts: a name must not reach into it either), those
    outside the work dir its names point at, and files outside the output dir that changed."""
    if scenario.escape_root is not None and scenario.own_folder is not None:
        for directory, _, files in os.walk(scenario.escape_root):
            if not Path(directory).is_relative_to(scenario.own_folder):
                yield from (Path(directory) / name for name in files if name in scenario.escape_names)
    yield from (path for path in scenario.escape_paths if path.exists())
    yield from (path for path, data in scenario.untouchable.items() if path.read_bytes() != data)


def judge(client: Any, scenario: Scenario) -> Outcome:
    """Read every expected file back from S3 and, where expected, from the output dir; look for escapes."""
    delivered = lost = corrupt = 0
    for item in scenario.expected:
        digest = hashlib.sha256(item.data).hexdigest()
        on_disk = item.disk_bytes() if item.on_disk else None
        in_s3 = s3_sha256(client, item.bucket, f"{item.source}/{item.path}")
        if (not item.on_disk or on_disk == item.data) and in_s3 == digest:
            delivered += 1
        elif (on_disk is not None and on_disk != item.data) or (in_s3 is not None and in_s3 != digest):
            corrupt += 1
        else:
            lost += 1
    escaped = list(_escaped_files(scenario))
    notes = scenario.notes + scenario.deaths + scenario.problems + [f"escaped: {path}" for path in escaped]
    return Outcome(
        scenario.name,
        scenario.faults,
        len(scenario.expected),
        delivered,
        lost,
        corrupt,
        len(escaped),
        len(scenario.deaths),
        len(scenario.problems),
        scenario.seconds,
        notes,
        scenario.not_run,
    )


def run_campaign(
    work: Path,
    seed: int,
    intensity: Intensity = QUICK,
    *,
    broker: str = DEFAULT_BROKER,
    scenarios: list[str] | None = None,
    stack: DevStack | None = None,
) -> list[Outcome]:
    """The scenarios in turn (default: all) in ``work``; the outcome of each, judged after all of them.

    On ``stack`` if given (it stays running), else on a fresh stack of ``broker``.
    """
    chosen = scenarios or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    rng = random.Random(seed)
    done: list[Scenario] = []
    with contextlib.nullcontext(stack) if stack else DevStack(log_dir=work / "logs", broker=broker) as running:
        campaign = Campaign(running, work)
        try:
            for name in chosen:
                started = time.monotonic()
                log.info("scenario %s", name)
                try:
                    scenario = SCENARIOS[name](campaign, rng, intensity)
                except Exception as exc:  # a scenario that breaks must not hide the others' rows
                    log.exception("scenario %s broke", name)
                    scenario = Scenario(name, faults="the scenario broke")
                    scenario.problems.append(f"the scenario itself failed: {type(exc).__name__}: {exc}")
                scenario.seconds = time.monotonic() - started
                log.info("scenario %s done in %.1fs", name, scenario.seconds)
                done.append(scenario)
        finally:
            campaign.close()
        client = s3_client(running)
        return [judge(client, scenario) for scenario in done]


def report(outcomes: list[Outcome]) -> str:
    def row(o: Outcome) -> list[object]:
        if o.not_run:
            return [o.scenario, f"not run: {o.not_run}", *("—" * 7), f"{o.seconds:.1f}"]
        figures = [o.expected, o.delivered, o.lost, o.corrupt, o.escaped, o.deaths, o.problems]
        return [o.scenario, o.faults, *figures, f"{o.seconds:.1f}"]

    table = format_table(
        [
            "scenario",
            "faults injected",
            "expected",
            "delivered byte-identical",
            "lost",
            "corrupt",
            "outside output dir",
            "worker deaths",
            "other failures",
            "seconds",
        ],
        [row(o) for o in outcomes],
        text_columns=2,
    )
    legend = (
        "delivered: byte-identical in S3 and, unless the file cannot be written there, in the output dir, read "
        "back after the last scenario; outside output dir: files written outside it, or outside the source's own "
        "folder in it; worker deaths: workers that died on their own; other failures: checks besides delivery"
    )
    notes = [f"{o.scenario}: {note}" for o in outcomes for note in o.notes]
    return "\n".join([table, legend, *notes])
