"""One Faust agent per registered processor or reproducer, and the agent that re-runs failed ones.

Importing this module (from ``app.py``) registers the built-in metadata reproducer and imports
the user modules named in ``FILESTREAM_PROCESSORS``, then gives every registration its own
agent on the completed-files topic.

Why an agent each: Faust hands every message of a topic to the queue of every agent
subscribed to it (each agent iterates its own clone of the topic object), so a slow processor
delays only its own queue.  The other processors and the S3 transfer carry on until the slow
one's queue holds ``stream_buffer_maxsize`` events (4096 by default); then Faust's flow
control pauses fetching that partition for every agent on the topic, which bounds the memory
a lagging processor holds.  The committed offset of a partition waits for its slowest agent,
so after a restart the faster agents see some events again: the results table makes that a
no-op.  User code runs in a thread pool of its own per registration, so one processor cannot
take another's threads, and the event loop (heartbeats, other agents) never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from faust.types import TopicT

from app import app, completed_topic, file_keyed_topic, settings
from models.events import FileEvent, decode_event
from models.identity import InvalidIdentity
from processors.api import Registration, RegistrationError, load_modules, registry
from processors.execution import Outcome, run_registration
from processors.metadata import METADATA_REPRODUCER, metadata_message
from processors.results import ProcessorResult, ResultStatus, RunDecision, decide_run, record_outcome, result_key
from settings import PREFIX
from tables.processor_results import iter_results, load_result, save_result

log = logging.getLogger(__name__)

# Requests of `faust -A app reprocess` (commands/reprocess.py): co-partitioned with the
# completed-files topic, so the request on partition p reaches the owner of p's records.
reprocess_topic = file_keyed_topic(f"{settings.completed_topic}-reprocess")
result_topics: dict[str, TopicT] = {}
_declared_topics: set[str] = set()


@dataclass
class ProcessorRuntime:
    registration: Registration
    executor: ThreadPoolExecutor
    lock: threading.Lock
    result_topic: TopicT | None

    @classmethod
    def create(cls, registration: Registration) -> ProcessorRuntime:
        topic = _result_topic(registration.topic) if registration.topic is not None else None
        executor = ThreadPoolExecutor(registration.concurrency, thread_name_prefix=f"processor-{registration.name}")
        return cls(registration, executor, threading.Lock(), topic)

    @property
    def name(self) -> str:
        return self.registration.name

    async def on_completed(self, event: FileEvent, partition: int) -> None:
        if not event.completed:
            return
        try:
            file_id = event.file_id
        except InvalidIdentity as exc:
            log.warning("%s: ignored a completed-file event on partition %d: %s", self.name, partition, exc)
            return
        if not self.registration.selects(file_id):
            return
        recorded = load_result(result_key(self.name, file_id.key))
        decision = decide_run(recorded, event)
        if decision is RunDecision.RUN:
            await self.run(event, partition, decided_on=recorded)
        else:
            log.info("%s: skipped %s generation %s: %s", self.name, file_id, event.generation, decision.value)

    async def run(self, event: FileEvent, partition: int, decided_on: ProcessorResult | None) -> None:
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self.executor, run_registration, self.registration, event, self.lock)
        if outcome.message is not None:
            outcome = await self._publish(event, outcome.message)
        key = result_key(self.name, event.file_id.key)
        result = record_outcome(
            load_result(key),
            decided_on,
            processor=self.name,
            event=event,
            partition=partition,
            status=outcome.status,
            reason=outcome.reason,
            now=time.time(),
        )
        if result is None:
            log.info(
                "%s: discarded its outcome on %s generation %s: another version was recorded while it ran",
                self.name,
                event.file_id,
                event.generation,
            )
            return
        save_result(key, result)
        _log_outcome(result, outcome)

    async def _publish(self, event: FileEvent, message: bytes) -> Outcome:
        topic = self.result_topic
        if topic is None:
            raise RuntimeError(f"{self.name} is a processor: it has no topic to publish to")
        try:
            await _declare_once(topic)
            await (await topic.send(key=event.file_id.key, value=message))
        except Exception as exc:
            # Whatever stops the message (broker down, too large) becomes a recorded failure that
            # `reprocess` can retry, instead of an exception that would stop this agent for good.
            return Outcome(ResultStatus.FAILED, f"could not produce the message to {topic.get_topic_name()}: {exc}")
        return Outcome(ResultStatus.PROCESSED)


def _result_topic(name: str) -> TopicT:
    """One topic object per result topic, however many reproducers share it."""
    if name not in result_topics:
        result_topics[name] = file_keyed_topic(name)
    return result_topics[name]


async def _declare_once(topic: TopicT) -> None:
    """Create ``topic`` unless this worker already did: Faust asks the broker (and logs it) on every call.

    Called at start, for consumers that subscribe before the first message, and before every
    send, because the first completed-file event may come before the start task has run.
    """
    name = topic.get_topic_name()
    if name not in _declared_topics:
        await topic.maybe_declare()
        _declared_topics.add(name)


def _log_outcome(result: ProcessorResult, outcome: Outcome) -> None:
    level = logging.WARNING if result.status is ResultStatus.FAILED else logging.INFO
    log.log(
        level,
        "%s: %s %s generation %s (attempt %d)%s",
        result.processor,
        result.status.value,
        result.file,
        result.generation,
        result.attempts,
        f": {result.reason}" if result.reason else "",
        exc_info=outcome.error,
    )


def _register_all() -> None:
    # The built-in first, so that a user module reusing its name is the one refused.
    if settings.metadata_enabled:
        registry.reproducer(name=METADATA_REPRODUCER, topic=settings.metadata_topic)(metadata_message)
    load_modules(settings.processors)


def _add_agent(runtime: ProcessorRuntime) -> None:
    async def process_completed_files(stream: Any) -> None:
        async for event in stream.events():
            file_event = decode_event(event.value, runtime.name)
            if file_event is not None:
                await runtime.on_completed(file_event, event.message.partition)

    # Faust labels an agent in its logs by its function's qualified name.
    process_completed_files.__qualname__ = f"processor-{runtime.name}"
    app.agent(completed_topic, name=f"processor-{runtime.name}", concurrency=runtime.registration.concurrency)(
        process_completed_files
    )


try:
    _register_all()
except RegistrationError as exc:
    sys.exit(f"filestream: {exc}")
runtimes: dict[str, ProcessorRuntime] = {r.name: ProcessorRuntime.create(r) for r in registry}
for _runtime in runtimes.values():
    _add_agent(_runtime)


# mode types a signal handler as taking any positional arguments; Faust sends this signal none.
@app.on_worker_init.connect  # type: ignore[arg-type]
def refuse_processors_without_output(sender: Any, **kwargs: Any) -> None:
    """Only a worker refuses: the upload and reprocess commands do not read output files."""
    if runtimes and not settings.write_output:
        raise SystemExit(
            f"filestream: processors read completed files from the output directory, but {PREFIX}WRITE_OUTPUT "
            f"is false; set it to true, or set {PREFIX}PROCESSORS to nothing and {PREFIX}METADATA_ENABLED=false "
            f"(registered: {', '.join(runtimes)})"
        )


@app.task
async def declare_result_topics() -> None:
    """Create the result topics at start with the pipeline's partition count.

    A consumer that subscribes to a result topic before its first message would otherwise
    have the broker auto-create it with a partition count of its own.
    """
    for topic in result_topics.values():
        await _declare_once(topic)


@app.agent(reprocess_topic, name="processor-reprocess")
async def reprocess_requests(stream: Any) -> None:
    async for event in stream.events():
        await reprocess_failed(event.value.decode("utf-8", "replace"), event.message.partition)


async def reprocess_failed(name: str, partition: int) -> None:
    """Run processor ``name`` again on the files of ``partition`` it failed on."""
    runtime = runtimes.get(name)
    if runtime is None:
        registered = ", ".join(runtimes)
        log.warning("ignored a request to reprocess %r: no such processor here (registered: %s)", name, registered)
        return
    failed = [
        result
        for result in iter_results()
        if result.processor == name and result.partition == partition and result.status is ResultStatus.FAILED
    ]
    log.info("%s: re-running %d failed files of partition %d", name, len(failed), partition)
    for result in failed:
        await runtime.run(FileEvent(**result.event), partition, decided_on=result)
