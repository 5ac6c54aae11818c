"""Session-wide servers and per-test pipelines for the end-to-end tests.

Every end-to-end test runs on Apache Kafka (``dev_stack``) with the production settings;
the few that also prove the development broker's path take ``tansu_stack`` or are
parametrized over both with ``broker_stack``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.stack import DevStack
from devstack.testing import pipeline_env
from devstack.worker import Worker


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A real single-node Apache Kafka broker and a real moto S3 server on free loopback ports, for the session."""
    with DevStack(log_dir=tmp_path_factory.mktemp("kafka-stack"), broker="kafka") as stack:
        yield stack


@pytest.fixture(scope="session")
def tansu_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The Tansu development broker and its own moto S3 server, started only if a test asks for them."""
    with DevStack(log_dir=tmp_path_factory.mktemp("tansu-stack"), broker="tansu") as stack:
        yield stack


@pytest.fixture(params=["kafka", "tansu"])
def broker_stack(request: pytest.FixtureRequest) -> DevStack:
    """Each broker in turn, for the tests that keep the development broker's path honest."""
    return request.getfixturevalue("dev_stack" if request.param == "kafka" else "tansu_stack")


@pytest.fixture
def pipeline(dev_stack: DevStack, tmp_path: Path) -> dict[str, str]:
    """Environment of one isolated pipeline (own app id, topics, bucket, dirs) on the shared Kafka stack."""
    return pipeline_env(dev_stack, tmp_path)


@pytest.fixture
def start_worker(pipeline: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start real workers; every one still running is stopped (SIGTERM, then SIGKILL) after the test."""
    workers: list[Worker] = []

    def start(name: str = "worker", env: dict[str, str] | None = None) -> Worker:
        worker = Worker(env or pipeline, tmp_path / f"{name}-data", name=name).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process and worker.process.alive():
            worker.stop()
        logging.getLogger("tests").debug("%s log tail:\n%s", worker.name, worker.log_tail())
