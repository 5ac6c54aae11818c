"""A file's S3 transfer record and what the transfer agent does next with it, as plain code.

The record is the :class:`~tables.transfer_state.TransferState` plus where the
generation's bytes are: the partition whose tables hold them and the epoch of its
chunk payloads (see ``tables/payload_holds.py``).  :func:`next_step` is the driver's
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

    def moved(self, transfer: TransferState) -> TransferRecord:
        return dataclasses.replace(self, transfer=transfer)

    def holds_payloads(self, epoch: int | None) -> bool:
        """Whether this record may still read the payloads of ``epoch``: the same epoch, not yet settled."""
        return epoch is not None and epoch == self.payload_epoch and not self.transfer.terminal

    def summary(self) -> dict[str, Any]:
        """One flat row: the transfer state's fields, then where the bytes are."""
        return {
            **self.transfer.to_dict(),
            "partition": self.partition,
            "payload_epoch": self.payload_epoch,
            "chunk_count": self.chunk_count,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "transfer": self.transfer.to_dict(),
            "partition": self.partition,
            "payload_epoch": self.payload_epoch,
            "chunk_count": self.chunk_count,
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
        )


class Step(str, enum.Enum):
    QUEUE = "queue"  # ready → pending
    UPLOAD = "upload"  # pending → transferring → done or failed
    VERIFY = "verify"  # done → valid or invalid
    INTERRUPTED = "interrupted"  # transferring, but no upload runs: a worker stopped mid-transfer
    RETRY = "retry"  # failed, backoff over, retries left → pending
    FRESH_UPLOAD = "fresh-upload"  # invalid for the first time → pending
    WAIT = "wait"  # failed, backoff not over yet
    SETTLED = "settled"  # terminal: nothing more will happen to this generation


def next_step(transfer: TransferState, now: float) -> Step:
    """The next step for a record no upload of this worker is working on.

    ``pending``, ``transferring`` and ``done`` records are only ever seen here when the
    worker that moved them there stopped before moving them on, so they are resumed.
    """
    if transfer.terminal:
        return Step.SETTLED
    if transfer.state is State.FAILED:
        return Step.RETRY if transfer.due(now) else Step.WAIT
    return _RESUMPTION[transfer.state]


_RESUMPTION = {
    State.READY: Step.QUEUE,
    State.PENDING: Step.UPLOAD,
    State.TRANSFERRING: Step.INTERRUPTED,
    State.DONE: Step.VERIFY,
    State.INVALID: Step.FRESH_UPLOAD,
}
