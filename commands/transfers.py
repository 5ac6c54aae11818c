"""``faust -A app transfers [--csv PATH] [--url URL]``: the S3 transfer state as CSV, and counts per state.

A command runs outside the workers and cannot safely open a running worker's RocksDB,
so it asks the workers: each answers for the partitions it owns in its
``/filestream/transfers/`` view (web/tables.py).  The worker at ``--url`` names them all
in its merged summary (client/workers.py); the command pages through each one's view.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from faust.cli import AppCommand, option

from app import app, settings
from client.workers import WorkerUnavailable, cluster_summary, get_json, worker_urls
from commands.base import Command
from commands.config_file import config_option
from tables.transfer_state import State
from web.paging import MAX_LIMIT

CSV_COLUMNS = (
    "file_id",
    "state",
    "generation",
    "retries",
    "max_retries",
    "message",
    "checksum",
    "size",
    "file_hash",
    "updated_at",
    "next_attempt_at",
    "invalid_retried",
    "partition",
    "payload_epoch",
    "chunk_count",
)


def fetch_transfers(url: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every transfer record a worker's web view lists, page by page."""
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        page_url = f"{url.rstrip('/')}/filestream/transfers/?limit={MAX_LIMIT}&offset={offset}"
        page = get_json(page_url, settings.web_token, timeout=timeout)
        rows.extend(page["transfers"])
        offset += len(page["transfers"])
        if not page["transfers"] or offset >= page["total"]:
            return rows


def merge_by_file(pages: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per file, sorted; a file seen twice (its partition moved during the dump) keeps the newest record."""
    latest: dict[str, dict[str, Any]] = {}
    for rows in pages:
        for row in rows:
            known = latest.get(row["file_id"])
            if known is None or row["updated_at"] >= known["updated_at"]:
                latest[row["file_id"]] = row
    return [latest[file_id] for file_id in sorted(latest)]


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def state_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Files per state, every state listed (in lifecycle order) even when none is in it."""
    counts = Counter(row["state"] for row in rows)
    return {state.value: counts.get(state.value, 0) for state in State}


@app.command(
    option(
        "--csv",
        "csv_path",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        default=Path("transfers.csv"),
        show_default=True,
        help="Where to write the CSV.",
    ),
    option(
        "--url",
        default=f"http://{settings.web_host}:{settings.web_port}",
        show_default=True,
        help="Web address of any worker of the app: it names the others.",
    ),
    config_option,
    base=Command,
)
async def transfers(self: AppCommand, csv_path: Path, url: str) -> None:
    """Dump the S3 transfer state of every file to CSV and print how many files are in each state."""
    try:
        urls = worker_urls(cluster_summary(url, settings.web_token))
        rows = merge_by_file([fetch_transfers(worker) for worker in urls])
    except WorkerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    write_csv(rows, csv_path)
    for state, count in state_counts(rows).items():
        self.say(f"{state:>12}  {count}")
    self.say(f"{'total':>12}  {len(rows)}  (written to {csv_path})")
