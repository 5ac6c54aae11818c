"""The per-file S3 transfer state machine and the transfer policy, as plain code.

One :class:`TransferState` per file identity records which generation is being
(or was last) transferred and where it stands, with the states users know from
the ``ClientFile`` of the upload client::

    ready → pending → transferring → done → valid
                           │           └──→ invalid ─(once, fresh upload)→ pending
                           └──→ failed ─(retries left, after the backoff)→ pending

Every transition returns a new record and refuses an illegal move with
:class:`IllegalTransition`; :func:`decide` is the whole policy for an incoming
completed-file event.  No I/O, no Faust: the transfer agent only carries out what
these return and stores the records (``dumps``/``loads``) in its table.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from errors import TransferError


class State(str, enum.Enum):
    READY = "ready"  # to be transferred, not yet queued
    PENDING = "pending"  # queued for transfer
    TRANSFERRING = "transferring"
    DONE = "done"  # in S3, not yet validated
    VALID = "valid"
    INVALID = "invalid"
    FAILED = "failed"  # did not reach S3; says nothing about validity


class IllegalTransition(TransferError, ValueError):
    """A transition the state machine does not allow from the record's current state."""


class TransferAction(str, enum.Enum):
    START = "start"  # no record yet: transfer this generation
    NOTHING_TO_DO = "nothing-to-do"  # this generation is already valid, in progress or settled
    STALE = "stale"  # older than the recorded generation: never overwrite a newer one
    SUPERSEDE = "supersede"  # newer than the recorded generation: replace it


@dataclass(frozen=True)
class TransferDecision:
    action: TransferAction
    reason: str = ""


def backoff_delay(retries: int, *, base: float, cap: float) -> float:
    """The longest wait before retry number ``retries + 1``: ``base * 2**retries``, at most ``cap``."""
    doublings: int = 2**retries  # typeshed types int ** int as Any: a negative exponent gives a float
    return min(cap, base * doublings)


def full_jitter(delay: float) -> float:
    """A wait drawn evenly from 0 to ``delay``, so workers that saw the same outage do not retry in lockstep.

    "Full jitter", as in the AWS Architecture Blog's "Exponential Backoff And Jitter".
    """
    return random.uniform(0.0, delay)  # noqa: S311  (spreading retries, not a secret)


def no_jitter(delay: float) -> float:
    return delay


@dataclass(frozen=True)
class TransferState:
    file_id: str  # ``source/path``, as :class:`models.identity.FileId` prints it
    generation: int | None
    file_hash: str  # SHA-256 hex of the whole file, from the completed-file event
    size: int
    state: State
    retries: int
    max_retries: int
    updated_at: float
    message: str | None = None  # why the record is failed or invalid, or why it was retried
    checksum: str | None = None  # CRC32 of the uploaded bytes, base64, once done
    next_attempt_at: float | None = None  # a failed transfer is retried from then on
    invalid_retried: bool = False

    @classmethod
    def new(
        cls,
        file_id: str,
        *,
        generation: int | None,
        file_hash: str,
        size: int,
        max_retries: int,
        now: float,
    ) -> TransferState:
        return cls(
            file_id=file_id,
            generation=generation,
            file_hash=file_hash,
            size=size,
            state=State.READY,
            retries=0,
            max_retries=max_retries,
            updated_at=now,
        )

    @property
    def retries_left(self) -> bool:
        return self.retries < self.max_retries

    @property
    def terminal(self) -> bool:
        """Nothing will ever happen to this generation again without a newer one."""
        if self.state is State.VALID:
            return True
        if self.state is State.FAILED:
            return not self.retries_left
        if self.state is State.INVALID:
            return self.invalid_retried
        return False

    def due(self, now: float) -> bool:
        """A failed transfer whose backoff has elapsed and that may be retried."""
        return (
            self.state is State.FAILED
            and self.retries_left
            and (self.next_attempt_at is None or now >= self.next_attempt_at)
        )

    def queue(self, *, now: float) -> TransferState:
        self._require(State.READY, "queue")
        return self._move(State.PENDING, now)

    def start_transfer(self, *, now: float) -> TransferState:
        self._require(State.PENDING, "start the transfer of")
        return self._move(State.TRANSFERRING, now)

    def transferred(self, *, checksum: str, now: float) -> TransferState:
        self._require(State.TRANSFERRING, "mark as transferred")
        return self._move(State.DONE, now, checksum=checksum)

    def validated(self, *, now: float) -> TransferState:
        self._require(State.DONE, "validate")
        return self._move(State.VALID, now)

    def invalidated(self, reason: str, *, now: float) -> TransferState:
        self._require(State.DONE, "invalidate")
        return self._move(State.INVALID, now, message=reason)

    def fail(
        self,
        reason: str,
        *,
        now: float,
        backoff_base: float,
        backoff_cap: float,
        jitter: Callable[[float], float] = no_jitter,
    ) -> TransferState:
        """Transferring → failed; schedules the next attempt if a retry is left."""
        self._require(State.TRANSFERRING, "fail")
        next_attempt_at = None
        if self.retries_left:
            next_attempt_at = now + jitter(backoff_delay(self.retries, base=backoff_base, cap=backoff_cap))
        return self._move(State.FAILED, now, message=reason, next_attempt_at=next_attempt_at)

    def interrupt(self, reason: str, *, now: float, resume_at: float | None = None) -> TransferState:
        """Transferring → pending without using up a retry: S3 gave no answer at all, or the worker stopped.

        ``resume_at``: not before then.
        """
        self._require(State.TRANSFERRING, "interrupt")
        return self._move(State.PENDING, now, message=reason, next_attempt_at=resume_at)

    def waiting(self, now: float) -> bool:
        """A pending transfer told to wait (see :meth:`interrupt`) whose time has not come."""
        return self.state is State.PENDING and self.next_attempt_at is not None and now < self.next_attempt_at

    def retry(self, *, now: float) -> TransferState:
        """Failed → pending, once the backoff has elapsed, while retries are left."""
        self._require(State.FAILED, "retry")
        if not self.retries_left:
            raise IllegalTransition(
                f"{self._name}: cannot retry, all {self.max_retries} retries used (last failure: {self.message})"
            )
        if self.next_attempt_at is not None and now < self.next_attempt_at:
            raise IllegalTransition(
                f"{self._name}: cannot retry before its backoff ends at {self.next_attempt_at:.3f} (now {now:.3f})"
            )
        retries = self.retries + 1
        return self._move(
            State.PENDING,
            now,
            retries=retries,
            message=f"retry {retries} of {self.max_retries} after: {self.message}",
        )

    def retry_invalid(self, *, now: float) -> TransferState:
        """Invalid → pending as a fresh upload, once per generation; a second invalid is terminal."""
        self._require(State.INVALID, "retry")
        if self.invalid_retried:
            raise IllegalTransition(f"{self._name}: invalid again after its one fresh upload ({self.message})")
        return self._move(
            State.PENDING,
            now,
            invalid_retried=True,
            checksum=None,
            message=f"fresh upload after invalid: {self.message}",
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransferState:
        return cls(**{**data, "state": State(data["state"])})

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def loads(cls, raw: bytes) -> TransferState:
        return cls.from_dict(orjson.loads(raw))

    @property
    def _name(self) -> str:
        return f"{self.file_id} (generation {self.generation})"

    def _require(self, expected: State, verb: str) -> None:
        if self.state is not expected:
            raise IllegalTransition(
                f"{self._name}: cannot {verb} a {self.state.value} transfer, only a {expected.value} one"
            )

    def _move(self, state: State, now: float, **changes: Any) -> TransferState:
        changes.setdefault("message", None)
        changes.setdefault("next_attempt_at", None)
        return dataclasses.replace(self, state=state, updated_at=now, **changes)


def decide(
    existing: TransferState | None,
    *,
    file_id: str,
    generation: int | None,
    file_hash: str,
) -> TransferDecision:
    """What to do with a completed-file event, given the file's transfer record (if any).

    With generation numbers on both sides, the higher generation wins.  Without them
    the newest event wins when its content differs: events of one file arrive in
    order on one partition, and the reassembly policy already refused stale content.
    A repeat of the recorded content does nothing whatever its state, so a redelivered
    event can neither restart a finished transfer nor revive a terminal failure.
    """
    if existing is None:
        return TransferDecision(TransferAction.START)
    if existing.file_id != file_id:
        raise ValueError(f"transfer record of {existing.file_id} consulted for {file_id}")
    if generation is not None and existing.generation is not None:
        if generation > existing.generation:
            return TransferDecision(
                TransferAction.SUPERSEDE, f"generation {generation} supersedes {existing.generation}"
            )
        if generation < existing.generation:
            return TransferDecision(
                TransferAction.STALE, f"generation {generation} is older than the recorded {existing.generation}"
            )
        if file_hash != existing.file_hash:
            return TransferDecision(
                TransferAction.NOTHING_TO_DO,
                f"generation {generation} arrived with different content; the recorded one stands",
            )
    elif file_hash != existing.file_hash:
        return TransferDecision(TransferAction.SUPERSEDE, "new content without generation numbers")
    return TransferDecision(TransferAction.NOTHING_TO_DO, _settled_reason(existing))


def _settled_reason(existing: TransferState) -> str:
    if existing.state is State.VALID:
        return "already valid"
    if existing.terminal:
        return f"already {existing.state.value} for good: {existing.message}"
    return f"already {existing.state.value}"
