"""One run of the upload command: open the registry and the producer, upload once or watch, report."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from client.discovery import PathFilter, discover, log_rejection
from client.kafka_security import check_broker_access
from client.progress import progress_for
from client.registry import Registry
from client.upload_options import UploadOptions
from client.uploader import Uploader, upload_once
from client.watch import watch
from models.identity import InvalidIdentity, validate_source
from settings import Settings


def default_source_name(host_name: str | None = None) -> str:
    """The host name, with every character a source name cannot hold replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname() if host_name is None else host_name)[:128]
    try:
        return validate_source(name)
    except InvalidIdentity:
        return "unknown-host"


@dataclass(frozen=True)
class UploadRequest:
    roots: Sequence[Path]
    source: str
    path_filter: PathFilter
    options: UploadOptions


@asynccontextmanager
async def _session(settings: Settings, options: UploadOptions) -> AsyncIterator[tuple[Registry, Uploader]]:
    """The registry, progress display and uploader of one run; the producer is always stopped."""
    with Registry.in_data_dir(settings.data_dir, settings.chunks_topic) as registry, progress_for() as progress:
        uploader = Uploader(settings, registry, options, progress)
        try:
            yield registry, uploader
        finally:
            await uploader.stop()


async def upload_and_report(settings: Settings, request: UploadRequest, say: Callable[[str], None]) -> int:
    """Upload every file under the roots once; say the summary; exit status 0 if every file made it, else 1."""
    found = discover(request.roots, request.source, request.path_filter)
    for rejected in found.rejected:
        log_rejection(rejected)
    async with _session(settings, request.options) as (_, uploader):
        report = await upload_once(uploader, found.files, found.rejected)
    for line in report.summary_lines():
        say(line)
    return 0 if report.ok else 1


async def watch_and_upload(settings: Settings, request: UploadRequest, *, settle: float, poll_interval: float) -> None:
    """Keep uploading new and changed files until cancelled (Ctrl-C or SIGTERM stop the Faust command).

    Refused credentials end it at once (BrokerAccessError), not when the first file has settled.
    """
    await check_broker_access(settings, timeout=request.options.ack_timeout)
    async with _session(settings, request.options) as (registry, uploader):
        await watch(
            uploader,
            registry,
            request.roots,
            request.source,
            request.path_filter,
            settle=settle,
            poll_interval=poll_interval,
            retry_delay=request.options.backoff_ceiling(request.options.retries),
        )
