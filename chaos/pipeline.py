"""One isolated pipeline of the campaign, the stack they share, and waiting for what a scenario expects of them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import urllib.error
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from chaos.s3_gate import S3Gate
from chaos.scenario import Expected, Scenario
from devstack.stack import DevStack
from devstack.testing import ChildProcess, Message, pipeline_env, produce_chunks, upload_command, view_rows
from devstack.worker import Worker
from settings import load_settings

log = logging.getLogger(__name__)

# A worker that dies on its own is restarted on its data dir this often, then left dead: a
# record that kills every worker reading it (a poison pill) must not keep the campaign busy.
RESTARTS_AFTER_DEATH = 2
# Faust's line for an agent (or service) that raised: Faust restarts the agent, the record is skipped.
AGENT_CRASH = re.compile(r"\[\^-*([^\]]+)\]: Crashed reason=(.*)$")
# The last error a dying worker logs, shutdown noise (cancellations) aside.
LAST_WORDS = re.compile(r"\[(?:CRITICAL|ERROR)\](?!.*CancelledError)")
T = TypeVar("T")


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


def delivered(pipeline: Pipeline, item: Expected) -> bool:
    digest = hashlib.sha256(item.data).hexdigest()
    row = pipeline.transfers(item.source, "valid").get(item.path)
    return bool(row and row["file_hash"] == digest) and (not item.on_disk or item.disk_bytes() == item.data)


def file_report(pipeline: Pipeline, source: str, path: str) -> str:
    """What the file view says about one file, in a few words."""
    status, view = pipeline.file_view(source, path)
    if view is None:
        return f"{path}: file view {status or 'unanswered'}"
    assembly, transfer = view.get("assembly") or {}, view.get("transfer") or {}
    return (
        f"{path}: {assembly.get('status')} {assembly.get('chunks_received')}/{assembly.get('chunk_count')} chunks"
        f"{' (' + assembly['reason'] + ')' if assembly.get('reason') else ''}, transfer {transfer.get('state')}"
    )


def wait_for(condition: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """The first truthy value of ``condition()``, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def files_not_on_disk(pipeline: Pipeline, scenario: Scenario, files: Mapping[str, bytes]) -> int:
    return sum(pipeline.output_bytes(scenario.name, path) != data for path, data in files.items())
