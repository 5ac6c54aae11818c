"""Create filestream's topics with the configured partition count before any client touches them.

A metadata request for an unknown topic makes the development broker (and a Kafka
broker with ``auto.create.topics.enable``) create it with its own default partition
count, after which Faust crash-loops on ``PartitionsMismatch``.  So uploaders and
workers call :func:`ensure_topics` first, and an existing topic with the wrong
partition count is reported instead of being used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaError,
    LeaderNotAvailableError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from client.kafka_security import client_options
from errors import ClientSideError
from settings import PREFIX, Settings

log = logging.getLogger(__name__)


class TopicMismatch(ClientSideError, RuntimeError):
    """A filestream topic exists with a partition count other than the configured one."""


def topic_names(settings: Settings) -> tuple[str, ...]:
    return (settings.chunks_topic, settings.completed_topic, settings.metadata_topic)


def new_topics(settings: Settings) -> list[NewTopic]:
    return [
        NewTopic(name, settings.partitions, settings.replication_factor, topic_configs=settings.topic_configs)
        for name in topic_names(settings)
    ]


async def ensure_topics(settings: Settings, *, request_timeout: float = 30.0) -> None:
    """Create the chunks, completed and metadata topics unless they exist; check their partition counts.

    Raises :class:`TopicMismatch` for a topic with the wrong partition count and the
    ``aiokafka`` error for anything else the broker refuses (connection errors included).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(request_timeout * 1000),
        **client_options(settings),
    )
    await admin.start()
    try:
        response = await admin.create_topics(new_topics(settings))
        for topic, error_code, *_ in response.topic_errors:
            if error_code == 0:
                log.info("created topic %s (%d partitions)", topic, settings.partitions)
            elif error_code != TopicAlreadyExistsError.errno:
                raise for_code(error_code)(f"cannot create topic {topic}")
        descriptions = await _described(admin, list(topic_names(settings)), request_timeout)
        message_limit = await _message_limit(admin, settings.chunks_topic)
    finally:
        await admin.close()
    if message_limit is not None and message_limit < settings.max_message_bytes:
        raise TopicMismatch(
            f"topic {settings.chunks_topic} accepts messages of at most {message_limit} bytes (max.message.bytes), "
            f"but chunks of {settings.chunk_size} bytes ({PREFIX}CHUNK_SIZE) need {settings.max_message_bytes}; "
            f"raise it with: kafka-configs --alter --entity-type topics --entity-name {settings.chunks_topic} "
            f"--add-config max.message.bytes={settings.max_message_bytes}"
        )
    for description in descriptions:
        if description.get("error_code"):
            raise for_code(description["error_code"])(f"cannot describe topic {description['topic']}")
        found = len(description["partitions"])
        if found != settings.partitions:
            raise TopicMismatch(
                f"topic {description['topic']} has {found} partitions but {PREFIX}PARTITIONS is "
                f"{settings.partitions}; delete the topic or change the setting"
            )


# UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE: what a topic created a moment ago may still answer.
_SETTLING = frozenset({UnknownTopicOrPartitionError.errno, LeaderNotAvailableError.errno})


async def _described(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> list[dict[str, Any]]:
    """The topics' descriptions once they show partitions.

    A topic created a moment ago can be missing from the answering broker's metadata, or show
    no partitions yet: that is not a wrong partition count, so ask again for a little while.
    """
    deadline = time.monotonic() + timeout
    while True:
        descriptions: list[dict[str, Any]] = await admin.describe_topics(names)
        settling = [
            d for d in descriptions if d.get("error_code") in _SETTLING or not (d.get("error_code") or d["partitions"])
        ]
        if not settling or time.monotonic() > deadline:
            return descriptions
        await asyncio.sleep(0.2)


async def _message_limit(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    """The topic's ``max.message.bytes``; None when the broker does not say (the development broker)."""
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        for response in responses:
            for error_code, _, _, name, entries in response.resources:
                if error_code == 0 and name == topic:
                    for entry in entries:
                        if entry[0] == "max.message.bytes":
                            return int(entry[1])
    except (KafkaError, ValueError, IndexError, TypeError) as exc:
        log.debug("cannot read the configuration of topic %s: %s", topic, exc)
    return None
