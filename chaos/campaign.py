"""The fault campaign: scenarios run one after another on one stack of their own, then every file is checked.

Each scenario sends its own files under its own source name (``<scenario>/<path>``), injects
its faults, and waits until its files are delivered or nothing has changed for the stall
timeout.  At the end, after every fault of every scenario, each expected file is read back
from the output directory and from S3 and compared with what was sent; files named by
hostile records are searched for outside the output directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.common import ChildProcess, broker_address, format_table, s3_client, s3_sha256, upload_command, view_rows
from chaos.records import CORRUPTIONS, Message, file_chunks, message, messages, produce
from chaos.s3_gate import S3Gate
from devstack.stack import DevStack
from devstack.worker import Worker
from settings import load_settings

log = logging.getLogger(__name__)

KiB, MiB = 1024, 1024**2
CHUNK = 64 * KiB  # crafted records: small chunks make many records per file
IN_FLIGHT = ("ready", "pending", "transferring", "done")  # transfer states before valid
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


QUICK = Intensity(1, 24, 1, (2.0, 4.0), 1, 24, 20, 8, 60.0)
LONG = Intensity(6, 160, 3, (3.0, 20.0), 4, 120, 120, 40, 180.0)


@dataclass
class Scenario:
    name: str  # also the source name of its files
    faults: str = ""
    expected: dict[str, bytes] = field(default_factory=dict)  # path → content
    escape_names: set[str] = field(default_factory=set)  # hostile names: no such file outside the source's folder
    escape_paths: set[Path] = field(default_factory=set)  # places outside the work dir hostile names point at
    untouchable: dict[Path, bytes] = field(
        default_factory=dict
    )  # files outside the output dir that must keep their bytes
    seconds: float = 0.0
    worker_died: bool = False  # on its own, not killed by the scenario
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    scenario: str
    faults: str
    expected: int
    delivered: int  # byte-identical in the output dir and in S3
    lost: int  # missing from one place or both, wrong in neither
    corrupt: int  # wrong bytes in one place or both
    escaped: int  # written outside the output dir (or outside its source's folder in it)
    seconds: float
    worker_died: bool
    notes: list[str]

    @property
    def ok(self) -> bool:
        return self.delivered == self.expected and not (self.lost or self.corrupt or self.escaped or self.worker_died)


class Pipeline:
    """The campaign's own broker, S3 server (behind a gate that can go down), one worker at a time."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.output = work / "output"
        self.stack = DevStack(log_dir=work / "logs")
        self.gate = S3Gate(self.stack.s3_port)
        self.env = {
            **self.stack.env(),
            "AWS_ENDPOINT_URL_S3": self.gate.url,
            "FILESTREAM_OUTPUT_DIR": str(self.output),
            "FILESTREAM_PARTITIONS": "4",
            # The dev broker holds a JoinGroup for half the session timeout: short sessions restart fast.
            "FILESTREAM_SESSION_TIMEOUT": "6",
            "FILESTREAM_HEARTBEAT_INTERVAL": "1",
            "FILESTREAM_LOG_LEVEL": "info",
        }
        self.settings = load_settings(self.env)
        self.worker: Worker | None = None
        self.worker_starts = 0

    def __enter__(self) -> Pipeline:
        self.stack.start()
        self.gate.come_back()
        try:
            self.start_worker(fresh_data_dir=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.worker:
            self.worker.stop()
        self.gate.go_down()
        self.stack.stop()

    def start_worker(self, fresh_data_dir: bool) -> None:
        """Start a worker and wait until it owns its partitions; ``fresh_data_dir``: restore from the changelog only."""
        if fresh_data_dir:
            self.worker_starts += 1
        data_dir = self.work / f"worker-{self.worker_starts}"
        self.worker = Worker(self.env, data_dir, name=f"worker-{self.worker_starts}").start()
        self.worker.wait_ready(timeout=180)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()

    def produce(self, records: list[Message]) -> None:
        asyncio.run(produce(broker_address(self.stack), self.settings.chunks_topic, records))

    def upload(self, directory: Path, source: str, *options: str) -> ChildProcess:
        return upload_command(
            self.env, directory, source, self.work / f"uploader-{source}", self.work / f"upload-{source}.log", *options
        )

    def transfers(self, source: str, state: str | None = None) -> dict[str, dict]:
        """The source's S3 transfer records (in ``state``), by path; none while the worker does not answer."""
        assert self.worker is not None
        rows = (
            view_rows(self.worker, "/filestream/transfers/" + (f"?state={state}" if state else ""), "transfers") or []
        )
        prefix = f"{source}/"
        return {row["file_id"].removeprefix(prefix): row for row in rows if row["file_id"].startswith(prefix)}

    def output_bytes(self, source: str, path: str) -> bytes | None:
        try:
            return (self.output / source / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None


def wait_for_delivery(pipeline: Pipeline, scenario: Scenario, stall_timeout: float) -> None:
    """Until every file is in the output dir and valid in S3 with the expected content.

    Gives up after ``stall_timeout`` seconds without progress.
    """
    wanted = {path: hashlib.sha256(data).hexdigest() for path, data in scenario.expected.items()}
    done: set[str] = set()
    last_progress = time.monotonic()
    while len(done) < len(wanted):
        valid = {path: row["file_hash"] for path, row in pipeline.transfers(scenario.name, "valid").items()}
        for path, digest in wanted.items():
            if (
                path not in done
                and valid.get(path) == digest
                and pipeline.output_bytes(scenario.name, path) == scenario.expected[path]
            ):
                done.add(path)
                last_progress = time.monotonic()
        if time.monotonic() - last_progress > stall_timeout:
            missing = sorted(set(wanted) - done)
            log.error(
                "%s: %d files not delivered after %.0fs without progress, e.g. %s",
                scenario.name,
                len(missing),
                stall_timeout,
                missing[:5],
            )
            return
        time.sleep(0.2)


def write_sources(directory: Path, files: Mapping[str, bytes]) -> None:
    for path, data in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)


def random_files(rng: random.Random, prefix: str, count: int, smallest: int, largest: int) -> dict[str, bytes]:
    return {f"{prefix}-{number:03d}.bin": rng.randbytes(rng.randint(smallest, largest)) for number in range(count)}


# --- scenarios ----------------------------------------------------------------------------


def worker_kills(pipeline: Pipeline, rng: random.Random, intensity: Intensity) -> Scenario:
    """SIGKILL the worker at random moments of an upload; restart it on its data dir or on an empty one."""
    scenario = Scenario("worker-kills")
    scenario.expected = random_files(rng, "kill", intensity.worker_kill_files, 1, 3 * MiB)
    sources = pipeline.work / "sources" / scenario.name
    write_sources(sources, scenario.expected)
    upload = pipeline.upload(sources, scenario.name)
    restarts = {True: 0, False: 0}
    not_yet_on_disk = []

    def missing() -> int:
        return sum(pipeline.output_bytes(scenario.name, path) != data for path, data in scenario.expected.items())

    # The first kill once files have started to arrive, so that some are done and some in flight.
    _wait_for(lambda: missing() < len(scenario.expected), 60)
    for kill in range(intensity.worker_kills):
        time.sleep(rng.uniform(0.0, 0.5) if kill == 0 else rng.uniform(0.5, 3.0))
        not_yet_on_disk.append(missing())
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
    return scenario


def s3_outages(pipeline: Pipeline, rng: random.Random, intensity: Intensity) -> Scenario:
    """The S3 endpoint goes down while transfers run (multipart ones included) and comes back."""
    scenario = Scenario("s3-outages")
    scenario.expected = {
        **random_files(rng, "multipart", 2 * intensity.s3_outages, 9 * MiB, 20 * MiB),
        **random_files(rng, "single", 10 * intensity.s3_outages, 1, 2 * MiB),
    }
    downtime, in_flight, reset = 0.0, 0, 0
    for batch in _split(list(scenario.expected.items()), intensity.s3_outages):
        pipeline.produce(
            messages(
                c
                for path, data in batch
                for c in file_chunks(data, source=scenario.name, path=path, chunk_size=MiB, generation=1)
            )
        )
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
    return scenario


def uploader_kills(pipeline: Pipeline, rng: random.Random, intensity: Intensity) -> Scenario:
    """SIGKILL the upload command mid-upload, run it again: its registry makes it resume."""
    scenario = Scenario("uploader-kills")
    scenario.expected = random_files(rng, "upload", intensity.uploader_files, 1, 4 * MiB)
    sources = pipeline.work / "sources" / scenario.name
    write_sources(sources, scenario.expected)
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
    return scenario


def corrupted_duplicated_reordered(pipeline: Pipeline, rng: random.Random, intensity: Intensity) -> Scenario:
    """Good chunks in shuffled order, some sent twice or three times, among corrupted copies and junk."""
    scenario = Scenario("corrupt-dup-reorder")
    scenario.expected = random_files(rng, "mixed", intensity.corrupted_files, 1, 8 * CHUNK)
    good: list[Message] = []
    bad: list[Message] = []
    after_first_good: list[tuple[bytes, Message]] = []  # records only harmless once the file's state exists
    injected: dict[str, int] = dict.fromkeys(CORRUPTIONS, 0)
    duplicates = 0
    for path, data in scenario.expected.items():
        for chunk in file_chunks(data, source=scenario.name, path=path, chunk_size=CHUNK, generation=1):
            copies = rng.choice((1, 1, 2, 3))
            duplicates += copies - 1
            good += [message(chunk)] * copies
            if rng.random() < 0.4:
                kind = rng.choice(list(CORRUPTIONS))
                injected[kind] += 1
                record = CORRUPTIONS[kind](chunk, rng)
                if kind == "contradicting header":
                    # As the first record of a file it would define the file (its hash is sound);
                    # a sender can only contradict what the worker already holds.
                    after_first_good.append((message(chunk)[0], record))
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
    return scenario


def stale_generations(pipeline: Pipeline, rng: random.Random, intensity: Intensity) -> Scenario:
    """Older generations of a file after, around and before newer ones: the newest complete one wins."""
    scenario = Scenario("stale-generations")
    records: list[Message] = []
    patterns: Counter[int] = Counter()
    for number in range(intensity.stale_files):
        path = f"versions-{number:03d}.bin"
        versions = {generation: rng.randbytes(rng.randint(CHUNK, 6 * CHUNK)) for generation in (1, 2, 3)}

        def chunks(generation: int, versions: dict[int, bytes] = versions, path: str = path) -> list[Message]:
            return messages(
                file_chunks(
                    versions[generation], source=scenario.name, path=path, chunk_size=CHUNK, generation=generation
                )
            )

        pattern = number % 4
        if pattern == 0:  # the older one after the newer one
            records += chunks(2) + chunks(1)
            scenario.expected[path] = versions[2]
        elif pattern == 1:  # the newer one in the middle of the older one
            older = chunks(1)
            half = len(older) // 2 or 1
            records += older[:half] + chunks(2) + older[half:]
            scenario.expected[path] = versions[2]
        elif pattern == 2:  # delivered, replaced by a newer one, then the first one again
            records += chunks(1) + chunks(2) + chunks(1)
            scenario.expected[path] = versions[2]
        else:  # a newer one complete, then part of an older one
            records += chunks(3) + chunks(2)[:1]
            scenario.expected[path] = versions[3]
        patterns[pattern] += 1
    pipeline.produce(records)
    scenario.faults = (
        f"older after newer x{patterns[0]}, newer inside older x{patterns[1]}, "
        f"replaced then replayed x{patterns[2]}, older partial after newer x{patterns[3]}"
    )
    return scenario


def hostile_paths(pipeline: Pipeline, rng: random.Random, intensity: Intensity) -> Scenario:
    """Names that climb out of the output dir, and symlinks planted in it, among ordinary files."""
    scenario = Scenario("hostile-paths")
    scenario.expected = random_files(rng, "ordinary", 3, 1, 3 * CHUNK)
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
    outside = pipeline.work / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"must stay as it is")
    scenario.untouchable[victim] = victim.read_bytes()
    planted = pipeline.output / scenario.name
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "linked-dir").symlink_to(outside, target_is_directory=True)
    (planted / "linked-file.txt").symlink_to(victim)
    names += [(scenario.name, f"linked-dir/{tag}-11.txt"), (scenario.name, "linked-file.txt")]

    records = messages(
        c
        for path, data in scenario.expected.items()
        for c in file_chunks(data, source=scenario.name, path=path, chunk_size=CHUNK, generation=1)
    )
    for source, path in names:
        records += messages(
            file_chunks(f"{tag} was here".encode(), source=source, path=path, chunk_size=CHUNK, generation=1)
        )
        target = Path(path) if path.startswith("/") else Path(os.path.normpath(pipeline.output / source / path))
        if not target.is_relative_to(pipeline.work):
            scenario.escape_paths.add(target)
    rng.shuffle(records)
    scenario.escape_names = {f"{tag}-{number}.txt" for number in range(1, 12)}
    pipeline.produce(records)
    scenario.faults = f"{len(names) - 2} hostile names, 2 planted symlinks"
    return scenario


SCENARIOS: list[Callable[[Pipeline, random.Random, Intensity], Scenario]] = [
    worker_kills,
    s3_outages,
    uploader_kills,
    corrupted_duplicated_reordered,
    stale_generations,
    hostile_paths,
]


def _split(items: list, parts: int) -> list[list]:
    return [items[index::parts] for index in range(parts)]


def _wait_for(condition: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """The first truthy value of ``condition()``, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


# --- verdict ------------------------------------------------------------------------------


def _escaped_files(pipeline: Pipeline, scenario: Scenario) -> Iterator[Path]:
    """Files named by the scenario's hostile records anywhere in the work dir but its source's folder of
    the output dir (another source's folder counts: a name must not reach into it either), those
    outside the work dir its names point at, and files outside the output dir that changed."""
    own_folder = pipeline.output / scenario.name
    for directory, _, files in os.walk(pipeline.work):
        if not Path(directory).is_relative_to(own_folder):
            yield from (Path(directory) / name for name in files if name in scenario.escape_names)
    yield from (path for path in scenario.escape_paths if path.exists())
    yield from (path for path, data in scenario.untouchable.items() if path.read_bytes() != data)


def judge(pipeline: Pipeline, scenario: Scenario) -> Outcome:
    """Read every expected file back from the output dir and from S3; look for escapes."""
    client = s3_client(pipeline.stack)
    delivered = lost = corrupt = 0
    for path, data in scenario.expected.items():
        digest = hashlib.sha256(data).hexdigest()
        on_disk = pipeline.output_bytes(scenario.name, path)
        in_s3 = s3_sha256(client, pipeline.settings.s3_bucket, f"{scenario.name}/{path}")
        if on_disk == data and in_s3 == digest:
            delivered += 1
        elif (on_disk is not None and on_disk != data) or (in_s3 is not None and in_s3 != digest):
            corrupt += 1
        else:
            lost += 1
    escaped = list(_escaped_files(pipeline, scenario))
    notes = scenario.notes + [f"escaped: {path}" for path in escaped]
    return Outcome(
        scenario.name,
        scenario.faults,
        len(scenario.expected),
        delivered,
        lost,
        corrupt,
        len(escaped),
        scenario.seconds,
        scenario.worker_died,
        notes,
    )


def run_campaign(work: Path, seed: int, intensity: Intensity = QUICK) -> list[Outcome]:
    """Every scenario in turn on a fresh stack in ``work``; the outcome of each, judged after all of them."""
    rng = random.Random(seed)
    scenarios: list[Scenario] = []
    with Pipeline(work) as pipeline:
        for run_scenario in SCENARIOS:
            started = time.monotonic()
            log.info("scenario %s", run_scenario.__name__)
            scenario = run_scenario(pipeline, rng, intensity)
            wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
            scenario.seconds = time.monotonic() - started
            assert pipeline.worker is not None
            if not pipeline.worker.process.alive():
                scenario.worker_died = True
                scenario.notes.append(f"the worker died:\n{pipeline.worker.log_tail()}")
                pipeline.start_worker(fresh_data_dir=False)
            log.info("scenario %s done in %.1fs", scenario.name, scenario.seconds)
            scenarios.append(scenario)
        return [judge(pipeline, scenario) for scenario in scenarios]


def report(outcomes: list[Outcome]) -> str:
    table = format_table(
        [
            "scenario",
            "faults injected",
            "expected",
            "delivered byte-identical",
            "lost",
            "corrupt",
            "outside output dir",
            "seconds",
        ],
        [
            [o.scenario, o.faults, o.expected, o.delivered, o.lost, o.corrupt, o.escaped, f"{o.seconds:.1f}"]
            for o in outcomes
        ],
        text_columns=2,
    )
    legend = (
        "delivered: byte-identical in the output dir and in S3, read back after the last scenario; "
        "outside output dir: files written outside it, or outside the source's own folder in it"
    )
    notes = [f"{o.scenario}: {note}" for o in outcomes for note in o.notes]
    return "\n".join([table, legend, *notes])
