"""Asking the workers' web views from a command: any one worker's merged summary names them all.

A command runs outside the workers and cannot open a running worker's RocksDB, so it asks
the views over HTTP.  ``/filestream/summary/?scope=cluster`` (web/summary.py) is the one
view that speaks for every worker: the asked worker gathers its peers' summaries and lists
each worker with its partitions, or with the error it got from a worker that did not answer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from errors import ClientSideError
from web.tokens import auth_headers

SUMMARY_PATH = "/filestream/summary/?scope=cluster"


class WorkerUnavailable(ClientSideError):
    """A worker did not answer, or answered with an error."""


def get_json(url: str, token: str, *, timeout: float) -> Any:
    """The JSON body of a worker's view; :class:`WorkerUnavailable` saying what went wrong otherwise."""
    request = urllib.request.Request(url, headers=auth_headers(token))  # noqa: S310
    # S310: the URL is a worker's web address from --url, the settings or a worker's own summary.
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise WorkerUnavailable(f"{url}: HTTP {exc.code} {exc.read().decode(errors='replace')[:200]}") from None
    except (OSError, ValueError) as exc:
        raise WorkerUnavailable(f"{url}: {exc}; is a worker running there?") from None


def cluster_summary(url: str, token: str, *, timeout: float = 15.0) -> dict[str, Any]:
    """The summary of every worker, merged by the worker at ``url``."""
    return get_json(url.rstrip("/") + SUMMARY_PATH, token, timeout=timeout)


def silent_workers(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The workers the merged summary lists as not answering, with their errors."""
    return [worker for worker in summary["workers"] if "error" in worker]


def worker_urls(summary: dict[str, Any]) -> list[str]:
    """Every worker of the summary, in the order it lists them; :class:`WorkerUnavailable` if one is silent."""
    silent = silent_workers(summary)
    if silent:
        raise WorkerUnavailable(
            "; ".join(f"{worker['url']} does not answer ({worker['error']})" for worker in silent)
            + ": its partitions' records cannot be read"
        )
    return [worker["url"] for worker in summary["workers"]]
