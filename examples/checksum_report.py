"""Example processor: one CSV line per completed file (identity, size, SHA-256) in a report file.

The report is ``checksum-report.csv`` in the worker's output directory.  Several files can be
processed at once, so the lock keeps lines from interleaving.  The size and hash come from the
completed-file event, which the worker verified against the reassembled bytes, so nothing is read.
"""

from __future__ import annotations

import csv
import threading

from processors.api import CompletedFile, processor

REPORT_NAME = "checksum-report.csv"
HEADER = ("file", "generation", "size", "sha256")


@processor(name="checksum-report", concurrency=2)
def append_checksum(file: CompletedFile, lock: threading.Lock) -> None:
    report = file.output_dir / REPORT_NAME
    with lock:
        is_new = not report.exists()
        with open(report, "a", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            if is_new:
                writer.writerow(HEADER)
            writer.writerow((str(file.file_id), file.generation, file.size, file.sha256))
