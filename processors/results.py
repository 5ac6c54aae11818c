"""What was recorded per processor and file, and when a file must be processed, as plain code.

One :class:`ProcessorResult` per (processor, file identity) records the last outcome for one
version of the file: its generation and hash.  Delivery is at-least-once, so the same
completed-file event can arrive again (after a restart, a rebalance, or because a slower
agent on the same topic held back the committed offset); :func:`decide_run` makes that a
no-op for a version already recorded, whatever its outcome.  Failed versions run again only
when asked to (``faust -A app reprocess``).  No I/O, no Faust: the agents store the records
(``dumps``/``loads``) in ``tables.processor_results``.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from models.events import FileEvent


class ResultStatus(str, enum.Enum):
    PROCESSED = "processed"
    FAILED = "failed"  # the user code raised, returned an exception or (reproducer) None; or no output file
    SUPERSEDED = "superseded"  # a newer version replaced the output file; its own event runs it


class RunDecision(str, enum.Enum):
    RUN = "run"
    ALREADY_RECORDED = "already recorded"
    STALE = "stale"  # an older generation than the one recorded


@dataclass(frozen=True)
class ProcessorResult:
    processor: str
    file: str  # ``source/path``, as :class:`models.identity.FileId` prints it
    generation: int | None
    file_hash: str
    status: ResultStatus
    reason: str | None
    attempts: int  # runs of this version, reprocessing included
    updated_at: float
    partition: int  # of the file's chunks, events and table records
    event: dict[str, Any]  # the completed-file event, to run this version again on request

    def is_version_of(self, event: FileEvent) -> bool:
        return (self.generation, self.file_hash) == (event.generation, event.file_hash)

    def summary(self) -> dict[str, Any]:
        """The record as the web view shows it (without the event it keeps for re-runs)."""
        data = asdict(self)
        del data["event"]
        data["status"] = self.status.value
        return data

    def dumps(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def loads(cls, raw: bytes) -> ProcessorResult:
        data = orjson.loads(raw)
        data["status"] = ResultStatus(data["status"])
        return cls(**data)


def result_key(processor: str, file_key: bytes) -> bytes:
    """Table key: the processor name (never holds a NUL), a NUL, the file identity key."""
    return processor.encode("utf-8") + b"\x00" + file_key


def decide_run(recorded: ProcessorResult | None, event: FileEvent) -> RunDecision:
    if recorded is None:
        return RunDecision.RUN
    if recorded.is_version_of(event):
        return RunDecision.ALREADY_RECORDED
    if _older(event.generation, recorded.generation):
        return RunDecision.STALE
    return RunDecision.RUN


def record_outcome(
    current: ProcessorResult | None,
    decided_on: ProcessorResult | None,
    *,
    processor: str,
    event: FileEvent,
    partition: int,
    status: ResultStatus,
    reason: str | None,
    now: float,
) -> ProcessorResult | None:
    """The record to store after a run of ``event``'s version, or None to keep ``current``.

    ``decided_on`` is the record the run was decided on; ``current`` is the record now.  They
    differ when another run of the same processor (a concurrent one, or a re-run on request)
    recorded something meanwhile.  A different version recorded meanwhile wins unless it is
    an older generation: without generation numbers the order of versions is the order of
    their events, and that one was recorded later.
    """
    if current is not None and not current.is_version_of(event):
        if event.generation is not None and current.generation is not None:
            if event.generation <= current.generation:
                return None
        elif current != decided_on:
            return None
    attempts = current.attempts + 1 if current is not None and current.is_version_of(event) else 1
    return ProcessorResult(
        processor=processor,
        file=str(event.file_id),
        generation=event.generation,
        file_hash=event.file_hash,
        status=status,
        reason=reason,
        attempts=attempts,
        updated_at=now,
        partition=partition,
        event=event.asdict(),
    )


def _older(generation: int | None, than: int | None) -> bool:
    return generation is not None and than is not None and generation < than
