"""A real worker starts against the real broker, creates its topics, serves its web port and stops cleanly."""

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devstack.stack import DevStack
from devstack.testing import pipeline_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(broker_stack: DevStack, tmp_path: Path) -> dict[str, str]:
    return pipeline_env(broker_stack, tmp_path)


async def _topic_partitions(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = await admin.describe_topics()
        return {t["topic"]: len(t["partitions"]) for t in topics}
    finally:
        await admin.close()


def test_worker_starts_creates_topics_serves_web_and_stops(start_worker, pipeline, broker_stack):
    # Not the dev broker's auto-create default of 4: the worker must create its topics itself.
    pipeline["FILESTREAM_PARTITIONS"] = "6"
    worker = start_worker()
    state = worker.wait_ready()
    assert state["app_id"] == pipeline["FILESTREAM_APP_ID"]
    assert state["assigned_partitions"] == list(range(6))

    partitions = asyncio.run(_topic_partitions(broker_stack.bootstrap_servers))
    assert partitions[pipeline["FILESTREAM_CHUNKS_TOPIC"]] == 6
    assert partitions[pipeline["FILESTREAM_COMPLETED_TOPIC"]] == 6

    started = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - started < 10


def test_invalid_setting_stops_worker_naming_the_variable(start_worker, pipeline):
    worker = start_worker(env={**pipeline, "FILESTREAM_CHUNK_SIZE": "lots"})
    assert worker.process.popen.wait(60) != 0
    assert "FILESTREAM_CHUNK_SIZE" in worker.log_tail()
