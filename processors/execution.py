"""One run of a processor or reproducer on one completed file, in an executor thread.

:func:`run_registration` never raises for anything the file or the user code does: every
outcome, including a crash of the user function, comes back as an :class:`Outcome` for the
agent to record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson

from models.events import FileEvent
from processors.api import Kind, Registration
from processors.completed_file import CompletedFile, OutputUnavailable, PinnedOutput, Superseded
from processors.results import ResultStatus


@dataclass(frozen=True)
class Outcome:
    status: ResultStatus
    reason: str | None = None
    message: bytes | None = None  # a reproducer's message, serialised
    error: BaseException | None = None  # what the user code raised or returned, for its traceback


def run_registration(registration: Registration, event: FileEvent, lock: threading.Lock) -> Outcome:
    try:
        pinned = PinnedOutput(event)
    except Superseded as exc:
        return Outcome(ResultStatus.SUPERSEDED, str(exc))
    except (OutputUnavailable, OSError) as exc:
        return Outcome(ResultStatus.FAILED, str(exc))
    with pinned:
        try:
            returned = registration.function(CompletedFile.from_event(event, pinned), lock)
        except Exception as exc:
            failure: Exception | None = exc
        else:
            failure = None
        # Checked first: a failure on bytes that are no longer this version says nothing about it.
        superseded = pinned.superseded_reason()
    if superseded:
        return Outcome(ResultStatus.SUPERSEDED, superseded)
    if failure is not None:
        return _failed(failure)
    return _interpret(registration, returned)


def _interpret(registration: Registration, returned: Any) -> Outcome:
    if registration.kind is Kind.PROCESSOR:
        return _failed(returned) if isinstance(returned, Exception) else Outcome(ResultStatus.PROCESSED)
    if returned is None:
        return Outcome(ResultStatus.FAILED, "the reproducer returned no message")
    try:
        message = orjson.dumps(returned)
    except TypeError as exc:
        return Outcome(ResultStatus.FAILED, f"the reproducer's message cannot be serialised as JSON: {exc}")
    return Outcome(ResultStatus.PROCESSED, message=message)


def _failed(error: Exception) -> Outcome:
    return Outcome(ResultStatus.FAILED, f"{type(error).__name__}: {error}", error=error)
