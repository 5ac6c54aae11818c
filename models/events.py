"""Events on the completed-files topic: one per finished generation of a file, completed or failed.

The value is a JSON object with the fields of :class:`FileEvent`; consumers of the topic
(the S3 agent, processors, a lab's own programs) read it as plain JSON.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from errors import RecordError
from models.identity import FileId

log = logging.getLogger(__name__)

COMPLETED = "completed"
FAILED = "failed"
STATUSES = (COMPLETED, FAILED)
# Downstream (S3 metadata, processors) relies on it whatever hash the chunk records carried.
FILE_HASH_NAME = "sha256"


class MalformedEvent(RecordError, ValueError):
    """A completed-topic message that is not a file event."""


@dataclass(frozen=True)
class FileEvent:
    """Keyed by the file identity, on the partition of the file's chunks.

    ``output_path`` is set when the worker wrote the file into its output directory.
    ``payload_epoch`` names the worker's spooled copy of the generation while its S3 transfer
    still reads it.  ``file_hash`` is the SHA-256 of a completed file; a failed event carries the
    hash its uploader announced (SHA-512 for OpenMSIStream records) and, for those records, no
    size.  ``reason`` says why a file failed; a file whose bytes were verified but that could not
    be written to the output directory fails with the reason and is still transferred to S3.
    """

    status: str
    source: str
    path: str
    generation: int | None
    file_hash: str
    file_size: int | None
    chunk_count: int
    first_chunk_at: float
    finished_at: float
    reason: str | None = None
    output_path: str | None = None
    payload_epoch: int | None = None

    @property
    def file_id(self) -> FileId:
        return FileId(self.source, self.path)

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    def asdict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def derive(self, **changes: Any) -> FileEvent:
        return dataclasses.replace(self, **changes)

    def dumps(self) -> bytes:
        return orjson.dumps(self.asdict())

    @classmethod
    def loads(cls, raw: bytes | None) -> FileEvent:
        """Parse and type-check a message value; :class:`MalformedEvent` says what is wrong."""
        try:
            data = orjson.loads(raw or b"")
        except orjson.JSONDecodeError as exc:
            raise MalformedEvent(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedEvent("not a JSON object")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name not in data:
                if field.default is dataclasses.MISSING:
                    raise MalformedEvent(f"field {field.name!r} is missing")
                continue
            values[field.name] = _checked(field.name, data[field.name])
        if values["status"] not in STATUSES:
            raise MalformedEvent(f"status {values['status']!r} is not one of {', '.join(STATUSES)}")
        return cls(**values)


_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "source": (str,),
    "path": (str,),
    "generation": (int, type(None)),
    "file_hash": (str,),
    "file_size": (int, type(None)),
    "chunk_count": (int,),
    "first_chunk_at": (int, float),
    "finished_at": (int, float),
    "reason": (str, type(None)),
    "output_path": (str, type(None)),
    "payload_epoch": (int, type(None)),
}


def _checked(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, _TYPES[name]):
        raise MalformedEvent(f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def decode_event(value: bytes | None, consumer: str) -> FileEvent | None:
    """The event in a completed-topic message, or None (logged) for a message that is not one.

    The topic carries raw bytes and every consumer decodes them itself, so one malformed
    message is skipped by each consumer instead of stopping all of them.
    """
    try:
        event = FileEvent.loads(value)
        _ = event.file_id  # validates the identity
    except ValueError as exc:  # MalformedEvent, or InvalidIdentity from the identity check
        log.warning("%s: skipped a malformed completed-files message (%r): %s", consumer, (value or b"")[:120], exc)
        return None
    return event
