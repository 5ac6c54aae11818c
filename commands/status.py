"""``faust -A app status [--url URL] [--watch [--interval SECONDS]] [--json]``: the cluster at a glance.

One request to one worker: its merged summary (``/filestream/summary/?scope=cluster``)
speaks for every worker (client/workers.py).  The exit status is 1 when a worker does not
answer, the asked one or any it lists, so scripts and probes can rely on it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import click
from faust.cli import AppCommand, option

from app import app, settings
from client.status_report import render_status
from client.workers import WorkerUnavailable, cluster_summary, silent_workers
from commands.base import Command

CLEAR_SCREEN = "\x1b[H\x1b[2J"


@app.command(
    option(
        "--url",
        default=f"http://{settings.web_host}:{settings.web_port}",
        show_default=True,
        help="Web address of any worker of the app: it asks the others.",
    ),
    option("--watch", is_flag=True, help="Show it again every --interval seconds, until Ctrl-C."),
    option(
        "--interval",
        type=click.FloatRange(min=0.5),
        default=2.0,
        show_default=True,
        metavar="SECONDS",
        help="With --watch: seconds between two looks.",
    ),
    option("--json", "as_json", is_flag=True, help="Print the merged summary as JSON, for scripts."),
    base=Command,
)
async def status(self: AppCommand, url: str, watch: bool, interval: float, as_json: bool) -> None:
    """Workers and their partitions, files per status, transfers per state, files in flight, latest failures."""
    while True:
        try:
            summary = await asyncio.to_thread(cluster_summary, url, settings.web_token)
        except WorkerUnavailable as exc:
            summary = {"workers": [{"url": url, "error": str(exc)}]}
        everyone_answered = not silent_workers(summary)
        text = json.dumps(summary, indent=2) + "\n" if as_json else render_status(summary)
        if watch and sys.stdout.isatty():
            text = CLEAR_SCREEN + text
        elif watch:
            text = time.strftime("--- %Y-%m-%d %H:%M:%S\n") + text
        self.say(text, nl=False)
        if not watch:
            break
        await asyncio.sleep(interval)
    if not everyone_answered:
        raise SystemExit(1)
