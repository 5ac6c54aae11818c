"""Helpers for end-to-end tests against the dev stack and real worker processes."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import DevStack
from devstack.worker import Worker

MetricSamples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def pipeline_env(stack: DevStack, base_dir: Path, **overrides: str) -> dict[str, str]:
    """Settings for one isolated pipeline on the shared broker: its own app id, topics, dirs and bucket.

    Short group timeouts: a SIGKILLed worker's partitions move once its session expires (and the
    development broker holds every JoinGroup for half the session timeout).
    """
    tag = uuid.uuid4().hex[:8]
    env = {
        **stack.env(),
        "FILESTREAM_APP_ID": f"fs-test-{tag}",
        "FILESTREAM_CHUNKS_TOPIC": f"chunks-{tag}",
        "FILESTREAM_COMPLETED_TOPIC": f"completed-{tag}",
        "FILESTREAM_METADATA_TOPIC": f"metadata-{tag}",
        "FILESTREAM_OUTPUT_DIR": str(base_dir / "output"),
        "FILESTREAM_DATA_DIR": str(base_dir / "client-data"),
        "FILESTREAM_S3_BUCKET": f"bucket-{tag}",
        "FILESTREAM_PARTITIONS": "4",
        "FILESTREAM_SESSION_TIMEOUT": "6",
        "FILESTREAM_HEARTBEAT_INTERVAL": "1",
        "FILESTREAM_LOG_LEVEL": "debug",
    }
    env.update(overrides)
    return env


async def produce_chunks(env: Mapping[str, str], messages: list[tuple[bytes, bytes]]) -> None:
    """Send (key, value) pairs to the pipeline's chunk topic in order, waiting for every ack."""
    from aiokafka import AIOKafkaProducer

    bootstrap = env["FILESTREAM_BROKER"].removeprefix("kafka://")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=16 * 1024**2)
    await producer.start()
    try:
        futures = [await producer.send(env["FILESTREAM_CHUNKS_TOPIC"], key=key, value=value) for key, value in messages]
        for future in futures:
            await future
    finally:
        await producer.stop()


def wait_for_files(
    output_dir: Path,
    expected: Mapping[str, bytes],
    *,
    stall_timeout: float = 60.0,
    workers: list[Worker] = (),
) -> None:
    """Wait until every expected file is present with the expected bytes.

    Gives up when nothing new has arrived for ``stall_timeout`` seconds, naming the files
    still missing or wrong (the dev broker rarely drops a message: fail clearly, never hang).
    """
    done: set[str] = set()
    last_progress = time.monotonic()
    while True:
        for name, data in expected.items():
            if name in done:
                continue
            path = output_dir / name
            try:
                if path.stat().st_size == len(data) and path.read_bytes() == data:
                    done.add(name)
                    last_progress = time.monotonic()
            except FileNotFoundError:
                pass
        if len(done) == len(expected):
            return
        if time.monotonic() - last_progress > stall_timeout:
            missing = sorted(set(expected) - done)
            wrong = [name for name in missing if (output_dir / name).exists()]
            logs = "\n".join(f"--- {w.name}\n{w.log_tail(30)}" for w in workers)
            raise AssertionError(
                f"{len(missing)} of {len(expected)} files missing after {stall_timeout}s without progress: "
                f"{missing[:10]} (present with wrong bytes: {wrong[:10]})\n{logs}"
            )
        time.sleep(0.2)


def poll(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Return the first truthy value of ``condition()``; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


def produce_paced(env: Mapping[str, str], batches: list[list[tuple[bytes, bytes]]], pause: float) -> threading.Thread:
    """Produce the batches from a background thread, ``pause`` seconds apart, while the test does other things."""

    def run() -> None:
        for batch in batches:
            asyncio.run(produce_chunks(env, batch))
            time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def metric_samples(exposition: str) -> MetricSamples:
    """Every sample of a Prometheus text exposition, ``(name, frozenset of label pairs) -> value``, parsed by
    prometheus_client's own parser (which refuses a malformed page)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
