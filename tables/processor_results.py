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
from tables.files import bytes_table, ensure_assignment_current, partition_entries, partitioned_store, read_value

processor_results = bytes_table(
    "processor-results", "Per processor and file: the last recorded outcome (processors.results.ProcessorResult)"
)


def load_result(key: bytes) -> ProcessorResult | None:
    raw = read_value(processor_results, key)
    return None if raw is None else ProcessorResult.loads(raw)


def save_result(key: bytes, result: ProcessorResult) -> None:
    processor_results[key] = result.dumps()


def iter_results() -> Iterator[ProcessorResult]:
    """Every record of the partitions this worker owns, in RocksDB key order per partition."""
    for raw in processor_results.values():
        yield ProcessorResult.loads(raw)


def partition_results(partition: int) -> Iterator[tuple[bytes, ProcessorResult]]:
    """The records of one partition this worker actively owns (Faust's memory store: filtered by partition)."""
    if partitioned_store(processor_results):
        for key, raw in partition_entries(processor_results, partition):
            yield key, ProcessorResult.loads(raw)
        return
    for key, raw in list(processor_results.items()):  # a snapshot, as a RocksDB iterator reads
        result = ProcessorResult.loads(raw)
        if result.partition == partition:
            yield key, result


def delete_result(key: bytes) -> None:
    """Delete a record, while an event of its partition is handled (the delete goes to that changelog partition)."""
    ensure_assignment_current()
    del processor_results[key]
