"""A file's S3 transfer record and what the transfer agent does next with it, as plain code.

The record is the :class:`~tables.transfer_state.TransferState` plus where the
generation's bytes are: the partition whose tables hold them and the epoch of its
spooled chunk payloads (``storage/spool.py``).  :func:`next_step` is the driver's
whole policy; the agent carries the steps out and stores the records.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

import orjson

from tables.transfer_state import State, TransferState


@dataclass(frozen=True)
class TransferRecord:
    transfer: TransferState
    partition: int
    payload_epoch: int | None  # None: the payloads were not kept for S3, so nothing can be sent
    chunk_count: int
    # The whole file's CRC32 (base64) as verified on completion: what S3 must end up holding.
    expected_checksum: str | None = None
    # The file hash as the chunk records name it (SHA-512 for OpenMSIStream's), to know its chunks again.
    chunk_file_hash: str | None = None

    def moved(self, transfer: TransferState) -> TransferRecord:
        return dataclasses.replace(self, transfer=transfer)

    def holds_payloads(self, epoch: int | None) -> bool:
        """Whether this record may still read the payloads of ``epoch``: the same epoch, not yet settled."""
        return epoch is not None and epoch == self.payload_epoch and not self.transfer.terminal

    @property
    def needs_bytes(self) -> bool:
        """Whether the transfer will still read the generation's spooled bytes."""
        return self.holds_payloads(self.payload_epoch)

    def describes(self, generation: int | None, chunk_file_hash: str) -> bool:
        """Whether chunks of this generation and file hash are the bytes this record transfers."""
        return self.transfer.generation == generation and self.chunk_file_hash == chunk_file_hash

    def summary(self) -> dict[str, Any]:
        """One flat row: the transfer state's fields, then where the bytes are."""
        return {
            **self.transfer.to_dict(),
            "partition": self.partition,
            "payload_epoch": self.payload_epoch,
            "chunk_count": self.chunk_count,
            "expected_checksum": self.expected_checksum,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "transfer": self.transfer.to_dict(),
            "partition": self.partition,
            "payload_epoch": self.payload_epoch,
            "chunk_count": self.chunk_count,
            "expected_checksum": self.expected_checksum,
            "chunk_file_hash": self.chunk_file_hash,
        }

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def loads(cls, raw: bytes) -> TransferRecord:
        data = orjson.loads(raw)
        return cls(
            transfer=TransferState.from_dict(data["transfer"]),
            partition=data["partition"],
            payload_epoch=data["payload_epoch"],
            chunk_count=data["chunk_count"],
            expected_checksum=data.get("expected_checksum"),
            chunk_file_hash=data.get("chunk_file_hash"),
        )


class Step(str, enum.Enum):
    QUEUE = "queue"  # ready → pending
    UPLOAD = "upload"  # pending → transferring → done, failed, or pending again (no answer from S3)
    VERIFY = "verify"  # done → valid or invalid
    INTERRUPTED = "interrupted"  # transferring, but no upload runs: a worker stopped mid-transfer
    RETRY = "retry"  # failed, backoff over, retries left → pending
    FRESH_UPLOAD = "fresh-upload"  # invalid for the first time → pending
    WAIT = "wait"  # failed or told to wait, and its time has not come
    AWAIT_BYTES = "await-bytes"  # pending, but this worker does not hold the file's bytes yet (a takeover)
    SETTLED = "settled"  # terminal: nothing more will happen to this generation


def next_step(transfer: TransferState, now: float, bytes_ready: bool = True) -> Step:
    """The next step for a record no upload of this worker is working on.

    ``pending``, ``transferring`` and ``done`` records are only ever seen here when the
    worker that moved them there stopped before moving them on, so they are resumed.
    ``bytes_ready``: the worker holds every byte of the generation (its spool is complete).
    """
    if transfer.terminal:
        return Step.SETTLED
    if transfer.state is State.FAILED:
        return Step.RETRY if transfer.due(now) else Step.WAIT
    if transfer.state is State.PENDING:
        if transfer.waiting(now):
            return Step.WAIT
        return Step.UPLOAD if bytes_ready else Step.AWAIT_BYTES
    return _RESUMPTION[transfer.state]


_RESUMPTION = {
    State.READY: Step.QUEUE,
    State.TRANSFERRING: Step.INTERRUPTED,
    State.DONE: Step.VERIFY,
    State.INVALID: Step.FRESH_UPLOAD,
}
