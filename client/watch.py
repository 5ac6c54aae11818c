"""``upload --watch``: poll the directories, send each file once it has settled, and keep going.

Polling rather than inotify: it works the same on every platform and file system
(network mounts included), and the settle rule needs periodic looks anyway.

:class:`SettleTracker` holds the decisions and no I/O: a file that is not yet sent
(as the registry knows it) becomes ready once its size and modification time have
not moved for ``settle`` seconds; a file whose upload failed waits (``retry_delay``
seconds, doubling with every failure in a row) unless it changes before it is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from client.discovery import FileSignature, PathFilter, Rejected, discover, log_rejection
from client.registry import Registry
from client.upload_report import Outcome
from client.uploader import Uploader
from models.identity import FileId

log = logging.getLogger(__name__)

Key = TypeVar("Key", bound=Hashable)

MAX_RETRY_DELAY = 600.0


@dataclass
class _Watched:
    signature: FileSignature
    unchanged_since: float
    failures: int = 0
    retry_at: float = 0.0


class SettleTracker(Generic[Key]):
    def __init__(self, settle: float, retry_delay: float, max_retry_delay: float = MAX_RETRY_DELAY) -> None:
        self.settle = settle
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._watched: dict[Key, _Watched] = {}

    def observe(self, unsent: Mapping[Key, FileSignature], now: float) -> list[Key]:
        """Take one poll's unsent files and their signatures; return those ready to send, in the given order.

        Files no longer in ``unsent`` (sent, or gone) are forgotten; a changed
        signature restarts the settle clock and clears the failure history.
        """
        self._watched = {key: self._watched[key] for key in unsent if key in self._watched}
        ready = []
        for key, signature in unsent.items():
            watched = self._watched.get(key)
            if watched is None or watched.signature != signature:
                self._watched[key] = watched = _Watched(signature, now)
            if now - watched.unchanged_since >= self.settle and now >= watched.retry_at:
                ready.append(key)
        return ready

    def failed(self, key: Key, now: float) -> None:
        """An attempt to send ``key`` failed: pause before the next one, doubling with each failure in a row.

        The pause keeps a file that cannot be read from filling the log on every poll.
        """
        watched = self._watched.get(key)
        if watched is not None:
            watched.failures += 1
            watched.retry_at = now + min(self.retry_delay * 2 ** (watched.failures - 1), self.max_retry_delay)


class RejectionLog:
    """Logs each rejected path once while it stays rejected, instead of on every poll."""

    def __init__(self) -> None:
        self._reported: set[tuple[Path, str]] = set()

    def report(self, rejected: Sequence[Rejected]) -> None:
        current = {(item.path, item.reason) for item in rejected}
        for item in rejected:
            if (item.path, item.reason) not in self._reported:
                log_rejection(item)
        self._reported = current


async def watch(
    uploader: Uploader,
    registry: Registry,
    roots: Sequence[Path],
    source: str,
    path_filter: PathFilter,
    *,
    settle: float,
    poll_interval: float,
    retry_delay: float,
) -> None:
    """Run until cancelled (Ctrl-C / SIGTERM stop the Faust command, which cancels this)."""
    tracker: SettleTracker[FileId] = SettleTracker(settle, retry_delay)
    rejections = RejectionLog()
    log.info("watching %s (settle %.1f s, poll every %.1f s)", ", ".join(map(str, roots)), settle, poll_interval)
    while True:
        found = await asyncio.to_thread(discover, roots, source, path_filter)
        rejections.report(found.rejected)
        unsent = {file.file_id: file for file in found.files if not registry.is_sent(file.file_id, file.signature)}
        ready = tracker.observe({file_id: file.signature for file_id, file in unsent.items()}, time.monotonic())
        if ready:
            for result in await uploader.upload([unsent[file_id] for file_id in ready]):
                if result.outcome is Outcome.FAILED:
                    tracker.failed(result.file.file_id, time.monotonic())
        await asyncio.sleep(poll_interval)
