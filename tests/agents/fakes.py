"""What the agents reach outside the process, faked where it leaves them: topics they send to, and S3."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
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


class NextCalls:
    """What happens at a fake's next calls, by the call's name: one action per call, run before the fake answers.

    An action may raise, and the call fails with it; or change the world the call happens in.
    """

    def __init__(self) -> None:
        self._actions: dict[str, list[Callable[[], None]]] = {}

    def do(self, call: str, action: Callable[[], None]) -> None:
        self._actions.setdefault(call, []).append(action)

    def fail(self, call: str, exc: Exception) -> None:
        def raise_it() -> None:
            raise exc

        self.do(call, raise_it)

    def happen(self, call: str) -> None:
        actions = self._actions.get(call)
        if actions:
            actions.pop(0)()


class RecordingTopic:
    """A topic that keeps what the agents send to it, as Faust's ``Topic.send`` is called, instead of producing it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Sent] = []
        self.next_calls = NextCalls()

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
        self.next_calls.happen("send")
        self.sent.append(Sent(key, value, partition, dict(headers or [])))
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    def events(self) -> list[FileEvent]:
        return [FileEvent.loads(sent.value) for sent in self.sent]


@dataclass
class FakeS3:
    """S3 as the transfer driver asks it (tables.transfer_driver.S3Calls): objects by file key.

    ``next_calls`` by the calls' names: ``reachable``, ``upload``, ``verify``.  ``confirms``: the
    upload's answer names the stored CRC32, as AWS S3's does (moto's multipart answer does not).
    """

    confirms: bool = False
    objects: dict[bytes, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    next_calls: NextCalls = field(default_factory=NextCalls)

    async def reachable(self) -> bool:
        self._answer("reachable")
        return True

    async def upload(self, file_key: bytes, record: TransferRecord, spooled: Path) -> Uploaded:
        self._answer("upload")
        data = spooled.read_bytes()
        self.objects[file_key] = data
        return Uploaded(crc32_base64(zlib.crc32(data)), len(data), parts=1, confirmed=self.confirms)

    async def verify(self, file_key: bytes, record: TransferRecord) -> str | None:
        self._answer("verify")
        data = self.objects.get(file_key)
        if data is None:
            return "no such object"
        if crc32_base64(zlib.crc32(data)) != record.transfer.checksum:
            return "the object's CRC32 is not the recorded one"
        return None

    def _answer(self, call: str) -> None:
        self.calls.append(call)
        self.next_calls.happen(call)


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
