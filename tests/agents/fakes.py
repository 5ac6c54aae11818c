"""What the agents reach outside the process, faked where it leaves them: topics they send to, and S3."""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from models.events import FileEvent
from storage.objects import crc32_base64
from tables.transfer_driver import Uploaded
from tables.transfer_record import TransferRecord


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: dict[str, bytes]


class RecordingTopic:
    """A topic that keeps what the agents send to it, as Faust's ``Topic.send`` is called, instead of producing it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Sent] = []
        self.refusals: list[Exception] = []

    def get_topic_name(self) -> str:
        return self.name

    async def maybe_declare(self) -> None:
        """There is no broker to create the topic on."""

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[None]:
        """Kept at once; the future stands for the broker's acknowledgement, as ``Topic.send`` returns it."""
        if self.refusals:
            raise self.refusals.pop(0)
        self.sent.append(Sent(key, value, partition, dict(headers or [])))
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    def refuse_next(self, exc: Exception) -> None:
        """The next send raises ``exc`` and keeps nothing."""
        self.refusals.append(exc)

    def events(self) -> list[FileEvent]:
        return [FileEvent.loads(sent.value) for sent in self.sent]


@dataclass
class FakeS3:
    """S3 as the transfer driver asks it (tables.transfer_driver.S3Calls): objects by file key, failures on demand.

    ``failures`` maps a call's name (``reachable``, ``upload``, ``verify``) to the exceptions its
    next calls raise, one per call.
    """

    objects: dict[bytes, bytes] = field(default_factory=dict)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def reachable(self) -> bool:
        self._answer("reachable")
        return True

    async def upload(self, file_key: bytes, record: TransferRecord, spooled: Path) -> Uploaded:
        self._answer("upload")
        data = spooled.read_bytes()
        self.objects[file_key] = data
        return Uploaded(crc32_base64(zlib.crc32(data)), len(data), parts=1)

    async def verify(self, file_key: bytes, record: TransferRecord) -> str | None:
        self._answer("verify")
        data = self.objects.get(file_key)
        if data is None:
            return "no such object"
        if crc32_base64(zlib.crc32(data)) != record.transfer.checksum:
            return "the object's CRC32 is not the recorded one"
        return None

    def fail_next(self, call: str, exc: Exception) -> None:
        self.failures.setdefault(call, []).append(exc)

    def _answer(self, call: str) -> None:
        self.calls.append(call)
        pending = self.failures.get(call)
        if pending:
            raise pending.pop(0)


@dataclass
class Outside:
    """Where the agents' records and files go: each topic they send to, and S3."""

    completed: RecordingTopic
    dead_letters: RecordingTopic
    transfer_requests: RecordingTopic
    metadata: RecordingTopic
    chunks: RecordingTopic
    s3: FakeS3


class Clock:
    """A clock the test moves forward, for the plain objects that take one (``clock=``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
