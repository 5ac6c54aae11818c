"""Run your own Python on every completed file: processors and reproducers.

A *processor* does something with each completed file and returns nothing (or raises).
A *reproducer* computes a message from each file and returns it; the worker produces it
(JSON, orjson) to the reproducer's topic, keyed by the file identity::

    import threading
    from processors.api import CompletedFile, processor, reproducer

    @processor(name="checksum-report", match=r"\\.csv$")
    def report(file: CompletedFile, lock: threading.Lock) -> None:
        with file.open() as reader:        # streamed: any size, bounded memory
            ...
        with lock:                         # shared resources: one thread at a time
            ...

    @reproducer(name="csv-stats", match=r"\\.csv$", topic="csv-stats")
    def stats(file: CompletedFile, lock: threading.Lock) -> dict | None:
        return {"rows": ...}               # None: nothing to publish, recorded as a failure

List the module in ``FILESTREAM_PROCESSORS`` (comma-separated module names); the app imports
it at start and runs each registered function as its own Faust agent, in threads, on every
completed file whose identity ``source/relative/path`` matches ``match`` (``re.search``).
The functions stay plain functions: call them directly in your own tests.

Outcomes are recorded per processor and file (``/filestream/processors/``): an exception,
an exception *returned* by a processor (OpenMSIStream's convention), or None from a
reproducer is a failure with its reason; ``faust -A app reprocess NAME`` re-runs the failed
ones.  Each file version is processed at least once, and a recorded outcome is not
recomputed when the same event is delivered again.
"""

from __future__ import annotations

import enum
import importlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from errors import ProcessorError
from models.identity import FileId
from processors.completed_file import CompletedFile
from settings import PREFIX
from settings.values import parse_name, parse_topic

__all__ = [
    "CompletedFile",
    "Kind",
    "Registration",
    "RegistrationError",
    "Registry",
    "load_modules",
    "processor",
    "registry",
    "reproducer",
]

UserFunction = Callable[[CompletedFile, threading.Lock], Any]


class RegistrationError(ProcessorError, ValueError):
    """A processor or reproducer that cannot be registered, or a module that cannot be found."""


class Kind(str, enum.Enum):
    PROCESSOR = "processor"
    REPRODUCER = "reproducer"


@dataclass(frozen=True)
class Registration:
    name: str
    kind: Kind
    function: UserFunction
    match: re.Pattern[str]
    topic: str | None  # where a reproducer's messages go
    concurrency: int  # files worked on at once, each in its own thread

    def selects(self, file_id: FileId) -> bool:
        return self.match.search(str(file_id)) is not None


class Registry:
    """Registered processors and reproducers, by name, in registration order."""

    def __init__(self) -> None:
        self._registrations: dict[str, Registration] = {}

    def processor(self, *, name: str, match: str = "", concurrency: int = 1) -> Callable[[UserFunction], UserFunction]:
        """Register ``function(file, lock) -> None`` to run on every completed file matching ``match``."""
        return self._decorator(Kind.PROCESSOR, name, match, None, concurrency)

    def reproducer(
        self, *, name: str, topic: str, match: str = "", concurrency: int = 1
    ) -> Callable[[UserFunction], UserFunction]:
        """Register ``function(file, lock) -> message | None``; each message goes to ``topic`` as JSON."""
        return self._decorator(Kind.REPRODUCER, name, match, topic, concurrency)

    def _decorator(
        self, kind: Kind, name: str, match: str, topic: str | None, concurrency: int
    ) -> Callable[[UserFunction], UserFunction]:
        def register(function: UserFunction) -> UserFunction:
            self.add(Registration(name, kind, function, _compile(name, match), topic, concurrency))
            return function

        return register

    def add(self, registration: Registration) -> None:
        name = registration.name
        try:
            parse_name(name)
            if registration.topic is not None:
                parse_topic(registration.topic)
        except ValueError as exc:
            raise RegistrationError(f"{registration.kind.value} {name!r}: {exc}") from None
        if registration.concurrency < 1:
            raise RegistrationError(f"{registration.kind.value} {name!r}: concurrency must be at least 1")
        if name in self._registrations:
            raise RegistrationError(f"a processor or reproducer named {name!r} is already registered")
        self._registrations[name] = registration

    def get(self, name: str) -> Registration | None:
        return self._registrations.get(name)

    def names(self) -> list[str]:
        return list(self._registrations)

    def __iter__(self) -> Iterator[Registration]:
        return iter(list(self._registrations.values()))

    def __len__(self) -> int:
        return len(self._registrations)


def _compile(name: str, match: str) -> re.Pattern[str]:
    try:
        return re.compile(match)
    except re.error as exc:
        raise RegistrationError(f"{name!r}: match {match!r} is not a regular expression: {exc}") from None


def load_modules(names: tuple[str, ...]) -> None:
    """Import the user modules named in ``FILESTREAM_PROCESSORS``; importing them registers their functions.

    Only a module that cannot be found becomes a :class:`RegistrationError`: any other error
    raised while importing a module is its author's bug and keeps its traceback.
    """
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise
            raise RegistrationError(f"{PREFIX}PROCESSORS names module {name!r}, which cannot be found: {exc}") from None


registry = Registry()
"""The registry the worker runs; the module-level decorators below register into it."""

processor = registry.processor
reproducer = registry.reproducer
