"""``faust -A app download DEST [options]``: write the files the transfer agent stored in S3 under DEST.

Thin on purpose: it checks the options, runs :func:`client.downloader.run_download` in a
thread while the event loop waits for Ctrl-C or SIGTERM (either stops the download, which
discards the files in progress), prints the written files one per line in key order, and
exits non-zero on any error: 1 for a refused plan or a failed file, 130 when stopped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import click
from faust.cli import AppCommand, argument, option

from app import app, settings
from client.download_plan import LAYOUTS, DownloadPlanError, Selection
from client.downloader import DownloadRequest, run_download
from commands.base import Command
from commands.config_file import config_option
from models.identity import InvalidIdentity, validate_source
from settings import PREFIX
from storage.local import UnsafeDestination
from storage.s3 import S3Error

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 128 + signal.SIGINT


def _sources(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    try:
        return tuple(validate_source(value) for value in values)
    except InvalidIdentity as exc:
        raise click.BadParameter(str(exc)) from None


def _regex(ctx: click.Context, param: click.Parameter, value: str | None) -> re.Pattern[str] | None:
    try:
        return None if value is None else re.compile(value)
    except re.error as exc:
        raise click.BadParameter(f"{value!r} is not a regular expression: {exc}") from None


@app.command(
    argument("dest", type=click.Path(file_okay=False, path_type=Path)),
    option(
        "--source",
        "sources",
        multiple=True,
        metavar="NAME",
        callback=_sources,
        help="Only the files of this source; repeatable.",
    ),
    option(
        "--prefix",
        default="",
        metavar="TEXT",
        help=f"Only files whose source/path starts with TEXT (below {PREFIX}S3_PREFIX).",
    ),
    option(
        "--match",
        default=None,
        metavar="REGEX",
        callback=_regex,
        help="Only files whose source/path matches (re.search).",
    ),
    option(
        "--layout",
        type=click.Choice(list(LAYOUTS)),
        default="mirror",
        show_default=True,
        help="mirror: DEST/source/path; flat: DEST/source__dir__name; "
        "by_date: DEST/YYYY-MM-DD/source/path, by the UTC day the object was stored.",
    ),
    option(
        "--overwrite",
        is_flag=True,
        default=False,
        help="Replace existing files, each only once its download is complete and verified.",
    ),
    option(
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help=f"Files downloaded in parallel [default: {PREFIX}S3_THREADS].",
    ),
    config_option,
    base=Command,
)
async def download(
    self: AppCommand,
    dest: Path,
    sources: tuple[str, ...],
    prefix: str,
    match: re.Pattern[str] | None,
    layout: str,
    overwrite: bool,
    jobs: int | None,
) -> None:
    """Download the files stored in S3 into DEST, each verified against its CRC32 and written atomically."""
    # As in the upload command: Faust gives its console handler the -l level (WARN by default),
    # which would hide the progress lines; filestream's loggers carry FILESTREAM_LOG_LEVEL.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.NOTSET)
    request = DownloadRequest(
        dest=dest,
        selection=Selection(sources, prefix, match),
        layout=layout,
        overwrite=overwrite,
        jobs=jobs or settings.s3_threads,
    )
    stop = threading.Event()
    # Mode's own handlers would cancel this coroutine and exit with status 0; instead the
    # download stops itself (discarding the files in progress) and the status says so.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stop_on_signal, stop, signum)
    try:
        report = await asyncio.to_thread(run_download, settings, request, stop)
    except asyncio.CancelledError:
        stop.set()  # the thread discards what it is writing before the process ends
        raise
    except (DownloadPlanError, UnsafeDestination, S3Error) as exc:
        raise SystemExit(f"download refused (nothing written): {exc}") from None
    for path in report.written:
        self.say(str(path))
    if report.stopped:
        self.say(
            f"download interrupted: {len(report.written)} of {report.planned} file(s) written, no partial file left",
            file=self.stderr,
        )
        raise SystemExit(EXIT_INTERRUPTED)
    if report.failed:
        raise SystemExit(
            f"download incomplete: {len(report.failed)} of {report.planned} file(s) failed, "
            f"{len(report.written)} written:\n"
            + "\n".join(f"  {download.stored.key}: {reason}" for download, reason in report.failed)
        )


def _stop_on_signal(stop: threading.Event, signum: int) -> None:
    log.warning("%s: stopping, the files in progress are discarded", signal.Signals(signum).name)
    stop.set()
