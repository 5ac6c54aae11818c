"""Fixtures of the storage tests: boto3 pointed at the test session's real moto server."""

import uuid

import pytest
from botocore.client import BaseClient

from devstack.stack import DevStack
from storage.s3 import ensure_bucket, make_s3_client


@pytest.fixture
def s3_env(dev_stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3 at the dev stack's moto server through the standard AWS variables only."""
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in dev_stack.env().items():
        if variable.startswith("AWS_"):
            monkeypatch.setenv(variable, value)


@pytest.fixture
def client(s3_env: None) -> BaseClient:
    return make_s3_client(4)


@pytest.fixture
def bucket(client: BaseClient) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    assert ensure_bucket(client, name) is True
    return name
