"""The processor results table: per (processor, file identity), the last recorded outcome.

RocksDB with a changelog, co-partitioned with the chunk and completed-file topics: a record
is written while an event of the file's partition is processed, so it lands in that
partition's changelog and follows the partition to whichever worker owns it.
Values are :class:`processors.results.ProcessorResult` records; keys are
:func:`processors.results.result_key`.
"""

from __future__ import annotations

from collections.abc import Iterator

from processors.results import ProcessorResult
from tables.files import bytes_table

processor_results = bytes_table(
    "processor-results", "Per processor and file: the last recorded outcome (processors.results.ProcessorResult)"
)


def load_result(key: bytes) -> ProcessorResult | None:
    raw = processor_results.get(key)
    return None if raw is None else ProcessorResult.loads(raw)


def save_result(key: bytes, result: ProcessorResult) -> None:
    processor_results[key] = result.dumps()


def iter_results() -> Iterator[ProcessorResult]:
    """Every record of the partitions this worker owns, in RocksDB key order per partition."""
    for raw in processor_results.values():
        yield ProcessorResult.loads(raw)
