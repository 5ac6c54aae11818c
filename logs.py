"""Log lines for people and for log stores: Faust's plain text (the default), or one JSON object per line.

``FILESTREAM_LOG_FORMAT=json`` gives every line as ``{"time", "level", "logger", "message"}``,
plus ``file``, ``generation`` and ``partition`` where the line is about a file: call sites
pass ``extra=file_fields(...)``, which plain text leaves out (its messages name the file
already).  The configuration goes to Faust (``faust.App(logging_config=...)``), which
applies it in workers and commands alike; this module imports neither Faust nor the app.
"""

from __future__ import annotations

from typing import Any

LOG_FORMATS = ("text", "json")


def file_fields(file_id: object, generation: int | None = None, partition: int | None = None) -> dict[str, Any]:
    """``extra=`` for a log call about one file: its identity (``source/path``), and its generation and
    partition where the call site knows them."""
    fields: dict[str, Any] = {"file": str(file_id)}
    if generation is not None:
        fields["generation"] = generation
    if partition is not None:
        fields["partition"] = partition
    return fields


def logging_config(log_format: str) -> dict[str, Any] | None:
    """Faust's ``logging_config`` for ``log_format``; ``None`` keeps Faust's own (colored on a terminal)."""
    if log_format == "text":
        return None
    if log_format != "json":
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,  # the modules' loggers exist before Faust configures logging
        # mode merges this into its own configuration: the root logger keeps the level of `-l`.
        "merge": True,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",  # ISO 8601, UTC
            }
        },
        # Replaces mode's "default" handler, the one the root logger writes to: still stderr.
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
    }
