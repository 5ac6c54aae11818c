"""``faust -A app transfers [--csv PATH] [--url URL...]``: the S3 transfer state as CSV, and counts per state.

A command runs outside the workers and cannot safely open a running worker's RocksDB,
so it asks the workers: it pages through each one's ``/filestream/transfers/`` view
(web/tables.py).  Each worker answers for the partitions it owns, so with several workers
pass every worker's ``--url``.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from faust.cli import AppCommand, option

from app import app, settings
from commands.config_file import config_option
from tables.transfer_state import State
from web.paging import MAX_LIMIT
from web.tokens import auth_headers

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


class WorkerUnavailable(click.ClickException):
    pass


def fetch_transfers(url: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every transfer record a worker's web view lists, page by page."""
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        page_url = f"{url.rstrip('/')}/filestream/transfers/?limit={MAX_LIMIT}&offset={offset}"
        try:
            request = urllib.request.Request(page_url, headers=auth_headers(settings.web_token))  # noqa: S310
            # S310: the URL is a worker's web address given by --url or the settings, never user data.
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                page = json.load(response)
        except urllib.error.HTTPError as exc:
            raise WorkerUnavailable(
                f"{page_url}: HTTP {exc.code} {exc.read().decode(errors='replace')[:200]}"
            ) from None
        except (OSError, ValueError) as exc:
            raise WorkerUnavailable(f"{page_url}: {exc}; is a worker running there?") from None
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
        "urls",
        multiple=True,
        metavar="URL",
        default=(f"http://{settings.web_host}:{settings.web_port}",),
        show_default=True,
        help="Web address of a worker; repeat it for every worker of the app.",
    ),
    config_option,
)
async def transfers(self: AppCommand, csv_path: Path, urls: tuple[str, ...]) -> None:
    """Dump the S3 transfer state of every file to CSV and print how many files are in each state."""
    rows = merge_by_file(fetch_transfers(url) for url in urls)
    write_csv(rows, csv_path)
    for state, count in state_counts(rows).items():
        self.say(f"{state:>12}  {count}")
    self.say(f"{'total':>12}  {len(rows)}  (written to {csv_path})")
