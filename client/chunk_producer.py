"""The Kafka producer behind the uploader: its settings, the broker made ready for it, the errors a retry may cure
and those it cannot, and the budget of bytes not yet acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from client.kafka_security import check_broker_access, client_options
from client.topics import ensure_topics
from client.upload_options import UploadOptions
from settings import Settings

# Broker trouble that a retry may cure; OSError covers refused and reset connections.
BROKER_ERRORS = (KafkaError, OSError)
# The broker's ACLs refuse this user something: no retry cures that.
AUTHORIZATION_ERRORS = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError)


class ProducerLike(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]: ...


def kafka_producer(settings: Settings, options: UploadOptions) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="filestream-uploader",
        acks="all",
        # Not idempotent: the duplicates a retry can cause are harmless (consumers place chunks by
        # index), while an idempotent aiokafka producer retries a frozen broker on its own past
        # --timeout, so the uploader could not report the outage and retry as it says it does.
        enable_idempotence=False,
        max_request_size=settings.max_message_bytes,
        request_timeout_ms=int(options.ack_timeout * 1000),
        **client_options(settings),
    )


async def prepare_broker(settings: Settings, *, request_timeout: float) -> None:
    """Before the producer: stop on credentials the brokers refuse (BrokerAccessError), then create the topics."""
    await check_broker_access(settings, timeout=request_timeout)
    await ensure_topics(settings, request_timeout=request_timeout)


def not_authorized(settings: Settings, error: BaseException, action: str, grant: str) -> str:
    who = f"user {settings.sasl_username!r}" if settings.uses_sasl else "this client"
    code = getattr(error, "message", type(error).__name__)  # aiokafka's name of the error code
    return f"broker {','.join(settings.bootstrap_servers)} does not allow {who} to {action} ({code}): {grant}"


def describe_error(error: BaseException) -> str:
    """``Name: message`` once (aiokafka's messages already start with the name)."""
    text, name = str(error), type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


class ByteBudget:
    """Caps the bytes handed to the producer and not yet acknowledged.

    One oversized request is let through when nothing is in flight, so a record bigger
    than the whole budget cannot wait forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._released = asyncio.Event()

    async def acquire(self, size: int) -> None:
        while self.used and self.used + size > self.limit:
            self._released.clear()
            await self._released.wait()
        self.used += size

    def release(self, size: int) -> None:
        self.used -= size
        self._released.set()
