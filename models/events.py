"""Events on the completed-files topic: one per finished generation of a file, completed or failed."""

from __future__ import annotations

import logging

import faust

from models.identity import FileId

log = logging.getLogger(__name__)

COMPLETED = "completed"
FAILED = "failed"
# Downstream (S3 metadata, processors) relies on it whatever hash the chunk records carried.
FILE_HASH_NAME = "sha256"


class FileEvent(faust.Record, serializer="orjson", validation=True):
    """Keyed by the file identity, on the partition of the file's chunks.

    ``output_path`` is set when the worker wrote the file into its output directory.
    ``payload_epoch`` names the chunk payloads in the worker's table while downstream
    consumers may still read them.  ``file_hash`` is the SHA-256 of a completed file; a
    failed event carries the hash its uploader announced (SHA-512 for OpenMSIStream records)
    and, for those records, no size.
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


def decode_event(value: bytes | None, consumer: str) -> FileEvent | None:
    """The event in a completed-topic message, or None (logged) for a message that is not one.

    The topic carries raw bytes and every consumer decodes them itself, so one malformed
    message is skipped by each consumer instead of stopping all of them.
    """
    try:
        event = FileEvent.loads(value)
        _ = event.file_id  # validates the identity
    except Exception as exc:  # anything a hostile message can raise in decoding is a rejection
        log.warning("%s: skipped a malformed completed-files message (%r): %s", consumer, (value or b"")[:120], exc)
        return None
    return event
