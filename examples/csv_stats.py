"""Example reproducer: count, min, max and mean of every numeric column of a CSV file, on topic ``csv-stats``.

The file is streamed through :meth:`CompletedFile.open`, so memory does not grow with its
size.  A value that does not parse as a finite number is not counted.  A file without even a
header row gives no message, which the worker records as a failure for that file.
"""

from __future__ import annotations

import csv
import io
import math
import threading
from dataclasses import dataclass
from typing import Any

from processors.api import CompletedFile, reproducer


@dataclass
class ColumnStats:
    count: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    total: float = 0.0

    def add(self, text: str) -> None:
        try:
            value = float(text)
        except ValueError:
            return
        if not math.isfinite(value):
            return
        self.count += 1
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.total += value

    def summary(self) -> dict[str, Any]:
        if not self.count:
            return {"count": 0, "min": None, "max": None, "mean": None}
        return {"count": self.count, "min": self.minimum, "max": self.maximum, "mean": self.total / self.count}


@reproducer(name="csv-stats", match=r"\.csv$", topic="csv-stats")
def csv_stats(file: CompletedFile, lock: threading.Lock) -> dict[str, Any] | None:
    with file.open() as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as text:
        rows = csv.reader(text)
        header = next(rows, None)
        if not header:
            return None
        columns = [ColumnStats() for _ in header]
        row_count = 0
        for row in rows:
            if not row:
                continue
            row_count += 1
            # A short or long row counts what it has.
            for stats, value in zip(columns, row, strict=False):
                stats.add(value)
    return {
        "source": file.source,
        "path": file.relative_path,
        "generation": file.generation,
        "sha256": file.sha256,
        "rows": row_count,
        "columns": [{"name": name, **stats.summary()} for name, stats in zip(header, columns, strict=True)],
    }
