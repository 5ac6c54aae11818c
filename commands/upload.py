"""``faust -A app upload PATH... [options]``: send files and directories to the chunk topic.

Thin on purpose: it parses and checks the options (bad ones stop here with a usage
error, before anything starts) and hands over to :mod:`client.session`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import click
from faust.cli import AppCommand, argument, option

from app import app, settings
from client.discovery import PathFilter
from client.kafka_security import BrokerAccessError
from client.session import UploadRequest, default_source_name, upload_and_report, watch_and_upload
from client.upload_options import UploadOptions, largest_chunk_size
from commands.base import Command
from commands.config_file import config_option
from models.identity import InvalidIdentity, validate_source
from settings import PREFIX
from settings.values import parse_size


def _regexes(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            raise click.BadParameter(f"{value!r} is not a regular expression: {exc}") from None
    return tuple(values)


def _chunk_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    if value is None:
        return settings.chunk_size
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    largest = largest_chunk_size(settings)
    if not 1 <= size <= largest:
        # Workers size their fetches from FILESTREAM_CHUNK_SIZE, so bigger chunks must be configured there.
        raise click.BadParameter(
            f"must be between 1 byte and {largest} bytes; for bigger chunks set {PREFIX}CHUNK_SIZE for every process"
        )
    return size


def _source(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    try:
        return validate_source(value) if value is not None else default_source_name()
    except InvalidIdentity as exc:
        raise click.BadParameter(str(exc)) from None


def _positive(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value > 0:
        raise click.BadParameter("must be a positive number")
    return value


@app.command(
    argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path)),
    option(
        "--include",
        multiple=True,
        metavar="REGEX",
        callback=_regexes,
        help="Send only files whose path relative to its PATH matches (re.search); repeatable.",
    ),
    option(
        "--exclude",
        multiple=True,
        metavar="REGEX",
        callback=_regexes,
        help="Do not send files whose relative path matches; repeatable, wins over --include.",
    ),
    option(
        "--chunk-size",
        metavar="SIZE",
        default=None,
        callback=_chunk_size,
        show_default=False,
        help=f"Payload bytes per chunk record, e.g. 512KiB [default: {PREFIX}CHUNK_SIZE].",
    ),
    option(
        "--source",
        metavar="NAME",
        default=None,
        callback=_source,
        show_default=False,
        help="Source name sent with every file [default: this host's name].",
    ),
    option("--watch", is_flag=True, default=False, help="Keep running: send new and changed files as they settle."),
    option(
        "--settle",
        type=float,
        default=5.0,
        metavar="SECONDS",
        callback=_positive,
        help="With --watch: send a file once its size and mtime have not changed for this long.",
    ),
    option(
        "--poll",
        type=float,
        default=1.0,
        metavar="SECONDS",
        callback=_positive,
        help="With --watch: seconds between looks at the directories.",
    ),
    option(
        "--retries",
        type=click.IntRange(min=0),
        default=5,
        help="Retries, after random pauses of up to 1, 2, 4... s, while the broker does not acknowledge.",
    ),
    option(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        callback=_positive,
        help="Seconds to wait for the broker to acknowledge a request before it counts as failed.",
    ),
    config_option,
    base=Command,
)
async def upload(
    self: AppCommand,
    paths: tuple[Path, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    chunk_size: int,
    source: str,
    watch: bool,
    settle: float,
    poll: float,
    retries: int,
    timeout: float,
) -> None:
    """Send files and directories (recursively) to filestream's chunk topic."""
    # Faust gives its console handler the -l level (WARN by default), which would hide the
    # uploader's progress lines.  Filestream's loggers already carry FILESTREAM_LOG_LEVEL
    # (app.py) and every other logger the root's level, so the handlers need no level.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.NOTSET)
    if settings.log_level != "debug":
        # aiokafka logs an ERROR line for every reconnect attempt (ten a second while the broker
        # is down); the uploader reports the outage and its retries itself.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    request = UploadRequest(
        roots=paths,
        source=source,
        path_filter=PathFilter.compile(include, exclude),
        options=UploadOptions(chunk_size=chunk_size, retries=retries, ack_timeout=timeout),
    )
    try:
        if watch:
            await watch_and_upload(settings, request, settle=settle, poll_interval=poll)
            return
        status = await upload_and_report(settings, request, self.say)
    except BrokerAccessError as exc:
        # Refused credentials or ACLs: every retry would be refused too.
        raise SystemExit(f"filestream upload: {exc}") from None
    if status:
        raise SystemExit(status)
