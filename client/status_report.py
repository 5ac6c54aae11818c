"""The cluster at a glance, as text for a terminal, from a merged summary (``/filestream/summary/?scope=cluster``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from client.upload_report import format_size

IN_FLIGHT_SHOWN = 10
FAILURES_SHOWN = 10
BAR_WIDTH = 20
NAME_WIDTH = 48


def render_status(summary: dict[str, Any]) -> str:
    """Workers and their partitions, files per status, transfers per state, files in flight, latest failures."""
    workers = summary["workers"]
    answering = [worker for worker in workers if "error" not in worker]
    partitions = sorted(p for worker in answering for p in worker["partitions"])
    lines = [f"filestream: {len(answering)} of {len(workers)} workers answering, {len(partitions)} partitions", ""]
    lines.append("WORKERS")
    for worker in workers:
        if "error" in worker:
            lines.append(f"  {worker['url']}  NOT ANSWERING: {worker['error']}")
            continue
        state = "  recovering" if worker["recovering"] else ""
        lines.append(
            f"  {worker['url']}  partitions {_ranges(worker['partitions']) or 'none'}"
            f"  up {_duration(worker['uptime_seconds'])}{state}"
        )
    if not answering:
        return "\n".join(lines) + "\n"
    throughput = summary["throughput"]
    lines += [
        "",
        f"THROUGHPUT  {format_size(throughput['bytes_per_second'])}/s, {throughput['files_per_second']:.1f} files/s"
        " (last minute)",
        "FILES       " + _counts(summary["files"]),
        "TRANSFERS   " + _counts(summary["transfers"]),
        "",
        f"IN FLIGHT ({summary['files'].get('assembling', 0)})",
    ]
    for row in summary["in_flight"][:IN_FLIGHT_SHOWN]:
        received, total = row["chunks_received"], row["chunk_count"]
        lines.append(
            f"  {_name(row['file'])}  {_bar(received, total)} {received}/{total} chunks"
            f"  {format_size(row['file_size'])}  idle {_duration(row['idle_seconds'])}"
        )
    lines += ["", "LATEST FAILURES"]
    failures = _latest_failures(summary["recent_failures"], summary["transfer_failures"])
    for _, kind, name, reason in failures[:FAILURES_SHOWN]:
        lines.append(f"  {kind:<8}  {_name(name)}  {reason}")
    if not failures:
        lines.append("  none")
    return "\n".join(lines) + "\n"


def _latest_failures(files: Iterable[dict], transfers: Iterable[dict]) -> list[tuple[float, str, str, str]]:
    """Failed files and failed S3 transfers together, newest first."""
    rows = [(row["finished_at"] or 0.0, "file", row["file"], row["reason"] or "") for row in files]
    rows += [
        (
            row["updated_at"],
            f"s3 {row['state']}",
            row["file_id"],
            f"{row['message']} (retries {row['retries']}/{row['max_retries']})",
        )
        for row in transfers
    ]
    return sorted(rows, key=lambda row: row[0], reverse=True)


def _counts(counts: dict[str, int]) -> str:
    return "  ".join(f"{name} {count}" for name, count in counts.items())


def _bar(done: int, total: int) -> str:
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"


def _name(name: str) -> str:
    """Long names keep their end, the part that tells files apart."""
    if len(name) > NAME_WIDTH:
        name = "…" + name[-(NAME_WIDTH - 1) :]
    return f"{name:<{NAME_WIDTH}}"


def _ranges(numbers: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``0-2,5,7-8``."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
