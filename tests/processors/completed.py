"""Completed-file events for files written into a test output directory, as the reassembly agent writes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from models.events import COMPLETED, FileEvent
from models.identity import FileId


def completed_event(
    output_dir: Path, data: bytes, *, path: str = "run/data.csv", source: str = "lab", generation: int | None = 1
) -> FileEvent:
    """Write ``data`` where the worker would and return the event announcing it."""
    destination = FileId(source, path).destination(output_dir)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(data)
    return FileEvent(
        status=COMPLETED,
        source=source,
        path=path,
        generation=generation,
        file_hash=hashlib.sha256(data).hexdigest(),
        file_size=len(data),
        chunk_count=1,
        first_chunk_at=1000.0,
        finished_at=1001.5,
        output_path=str(destination),
    )
