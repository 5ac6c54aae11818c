"""The agents in-process, through Faust's ``agent.test_context()``: the app configured here, the outside faked.

The app reads its settings once, when ``app`` is first imported.  This conftest imports it, with
:data:`TEST_SETTINGS` as the only ``FILESTREAM_*`` variables, before pytest collects any test
module of this folder (they import the agents at their top), and puts the environment back
afterwards, so the worker processes of the end-to-end tests never see these values.  No other
test imports ``app`` in-process (tests/web/test_switches.py does it in a subprocess); if one
ever did so before this folder, the check below stops the run instead of testing the agents
with its settings.

The tables use Faust's memory store: the real RocksDB store shows a table only the partitions
the worker was assigned by its consumer group (``items()`` of the expiry agent would see
nothing), and a test context has no consumer group.  Table writes still go through Faust's
``Table`` (the changelog records queue in the unstarted producer's buffer, never sent), and
still need the current event of the key's partition (tables.files.ensure_assignment_current).

Everything the agents send out, and S3, are replaced by fakes where they leave
(:func:`outside`); the broker URL names a port nothing listens on, so a send these tests did
not foresee fails instead of reaching a broker someone else runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest
from yarl import URL

from devstack.processes import free_port

if "app" in sys.modules:
    raise pytest.UsageError(
        "tests/agents imports the app with its own settings, but another test imported it first: "
        "import app in that test's subprocess, or run tests/agents on its own"
    )

T = TypeVar("T")
WORK_DIR = Path(tempfile.mkdtemp(prefix="filestream-agent-tests-"))
TEST_SETTINGS = {
    "FILESTREAM_BROKER": f"kafka://127.0.0.1:{free_port()}",
    "FILESTREAM_APP_ID": "filestream-agent-tests",
    "FILESTREAM_DATA_DIR": str(WORK_DIR / "data"),
    "FILESTREAM_OUTPUT_DIR": str(WORK_DIR / "output"),
    "FILESTREAM_PARTITIONS": "4",
    # The intake agent exists only with a topic to read; its records need a codec that accepts them.
    "FILESTREAM_OPENMSISTREAM_TOPIC": "agent-tests-openmsistream",
    "FILESTREAM_CHUNK_CODEC": "auto",
}

# Faust objects made at import bind to the loop current then; every test runs on this one.
LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)
with mock.patch.dict(os.environ):
    for _name in [name for name in os.environ if name.startswith("FILESTREAM_")]:
        del os.environ[_name]
    os.environ.update(TEST_SETTINGS)
    from app import app, chunks_topic, completed_topic, dead_letter_topic, transfer_requests_topic

app.conf.store = URL("memory://")  # before any table is touched: Faust opens a table's store on first use

import agents.expiry  # noqa: E402  (after the app: they read its settings and tables at import)
import agents.openmsistream  # noqa: E402
import agents.processors  # noqa: E402
import agents.progress  # noqa: E402
import agents.reassembly  # noqa: E402
import agents.retention  # noqa: E402
import agents.s3_transfer  # noqa: E402
from processors.metadata import METADATA_REPRODUCER  # noqa: E402
from tests.agents.fakes import FakeS3, Outside, RecordingTopic  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def agent_test_session() -> Iterator[None]:
    yield
    LOOP.close()
    shutil.rmtree(WORK_DIR, ignore_errors=True)


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a test's coroutine on the loop the app's objects were made on."""
    return LOOP.run_until_complete


@pytest.fixture(autouse=True)
def outside(monkeypatch: pytest.MonkeyPatch) -> Outside:
    metadata_runtime = agents.processors.runtimes[METADATA_REPRODUCER]
    assert metadata_runtime.result_topic is not None
    fakes = Outside(
        completed=RecordingTopic(completed_topic.get_topic_name()),
        dead_letters=RecordingTopic(dead_letter_topic.get_topic_name()),
        transfer_requests=RecordingTopic(transfer_requests_topic.get_topic_name()),
        metadata=RecordingTopic(metadata_runtime.result_topic.get_topic_name()),
        chunks=RecordingTopic(chunks_topic.get_topic_name()),
        s3=FakeS3(),
    )
    # The agents subscribed to the real topics at import; these are the ones they send to.
    monkeypatch.setattr(agents.reassembly, "completed_topic", fakes.completed)
    monkeypatch.setattr(agents.reassembly, "dead_letter_topic", fakes.dead_letters)
    monkeypatch.setattr(agents.reassembly, "transfer_requests_topic", fakes.transfer_requests)
    monkeypatch.setattr(agents.s3_transfer, "transfer_requests_topic", fakes.transfer_requests)
    monkeypatch.setattr(agents.openmsistream, "chunks_topic", fakes.chunks)
    monkeypatch.setattr(metadata_runtime, "result_topic", fakes.metadata)
    monkeypatch.setattr(agents.s3_transfer.driver, "s3", fakes.s3)
    return fakes


@pytest.fixture
def new_path() -> Callable[[str], str]:
    """A path no other test uses: the tables and the output directory live as long as the session."""
    folder = uuid.uuid4().hex[:12]
    return lambda name: f"{folder}/{name}"
