"""What every extractor shares: the :class:`Source` it reads, the :class:`Format` it is
registered as, and the :class:`MalformedContent` it raises on bad content."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import ProcessorError


class MalformedContent(ProcessorError, ValueError):
    """The content does not match its format; the message is the reason given to users.

    ``format_name`` names the format the content was being read as, when an
    extractor had already refined it (a ``.txt`` file that turned out to be a
    CSV table).
    """

    def __init__(self, reason: str, format_name: str | None = None) -> None:
        super().__init__(reason)
        self.format_name = format_name


@dataclass(frozen=True)
class Source:
    """What an extractor gets: the file, its relative name, its size and its first bytes."""

    path: Path
    name: str
    size: int
    head: bytes


Extractor = Callable[[Source], dict[str, Any]]
"""Returns the format-specific fields; may return ``"format"`` to refine the detected format."""


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    extract: Extractor | None = None
    generic: bool = False
    """A catch-all for content not recognised more precisely, where a MIME type
    guessed from the file name says more than the format does (``.xml`` is "text")."""
