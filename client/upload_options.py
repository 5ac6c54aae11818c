"""How the uploader sends: chunk size, retries and their pauses, memory bounds."""

from __future__ import annotations

import random
from dataclasses import dataclass

from client.chunking import DEFAULT_KEEP_LIMIT
from models.chunk import MAX_HEADER_BYTES
from settings import Settings


@dataclass(frozen=True)
class UploadOptions:
    chunk_size: int
    retries: int = 5
    ack_timeout: float = 30.0
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    max_in_flight_bytes: int = 32 * 1024**2
    keep_limit: int = DEFAULT_KEEP_LIMIT
    # A file that keeps changing while it is read is given up after this many tries.
    read_attempts: int = 3

    def backoff_ceiling(self, attempt: int) -> float:
        """The longest pause before retry ``attempt`` (1-based): doubling from ``first_backoff``, at most
        ``max_backoff``."""
        return min(self.first_backoff * 2 ** (attempt - 1), self.max_backoff)

    def backoff(self, attempt: int) -> float:
        """Pause before retry ``attempt``: anywhere up to its ceiling ("full jitter"), so uploaders that saw
        the same broker outage do not all come back at the same moment."""
        return random.uniform(0, self.backoff_ceiling(attempt))  # noqa: S311  (spreading retries, not a secret)


def largest_chunk_size(settings: Settings) -> int:
    """The biggest payload whose encoded record still fits the request size the topics are set up for."""
    return settings.max_message_bytes - MAX_HEADER_BYTES - 1024
