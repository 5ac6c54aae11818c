"""filestream's tables: RocksDB with changelog topics, keyed by file identity (bytes), co-partitioned with the chunks.

Keys are bytes, so ``table_route`` can find the worker that owns a file.  Values are the
byte encodings of plain records; :class:`RecordTable` loads and saves them as their classes.
A write happens while an event of the key's partition is processed (Faust picks the
partition's store and changelog partition from the current event), and only while that
event's assignment lasts: a handler that finishes after its partition was revoked must not
write into a changelog another worker now owns (Faust does not wait for handlers on a
rebalance here: see ``stream_wait_empty`` in app.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

import faust

from app import app, settings
from errors import FilestreamError
from tables.assembly import AssemblyState

# RocksDB's own caches, kept small: the tables hold small records (Faust's default block cache
# is 2 GiB per table, which only inflates the worker's RSS).
_ROCKSDB_OPTIONS = {
    "block_cache_size": 16 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 2,
}


class AssignmentLost(FilestreamError):
    """The partition of the event being handled was revoked: its work is redone by its next owner."""


class Codec(Protocol):
    def dumps(self) -> bytes: ...


R = TypeVar("R", bound=Codec)


def bytes_table(name: str, help: str, recovery_buffer_size: int = 1000) -> faust.types.TableT[bytes, bytes]:
    return app.Table(
        name,
        key_type=bytes,  # bytes types make Faust store and log keys and values raw
        value_type=bytes,
        partitions=settings.partitions,
        options=dict(_ROCKSDB_OPTIONS),
        recovery_buffer_size=recovery_buffer_size,
        standby_buffer_size=recovery_buffer_size,
        extra_topic_configs=settings.topic_configs,
        help=help,
    )


def ensure_assignment_current() -> None:
    """Raise :class:`AssignmentLost` if the current event was fetched under an assignment that is gone."""
    event = faust.current_event()
    if event is None:
        raise RuntimeError("tables are written only while an event of the key's partition is handled")
    owns = getattr(app.consumer, "owns", None)  # transport.Consumer; Faust's own in an in-process test
    generation = event.message.generation_id
    if (owns is not None and not owns(event.message)) or (
        generation is not None and generation != app.consumer_generation_id
    ):
        raise AssignmentLost(f"partition {event.message.partition} was reassigned while its event was handled")


class RecordTable(Generic[R]):
    """One table's values as records of one class."""

    def __init__(self, table: faust.types.TableT[bytes, bytes], loads: Any) -> None:
        self.table = table
        self._loads = loads

    def load(self, key: bytes) -> R | None:
        raw = self.table.get(key)
        return None if raw is None else self._loads(raw)

    def save(self, key: bytes, record: R) -> None:
        ensure_assignment_current()
        self.table[key] = record.dumps()

    def items(self) -> Iterator[tuple[bytes, R]]:
        """Every record of the partitions this worker actively owns."""
        for key, raw in self.table.items():
            yield key, self._loads(raw)


assemblies_table = bytes_table("assemblies", "Per-file assembly state (tables.assembly.AssemblyState)")
assemblies: RecordTable[AssemblyState] = RecordTable(assemblies_table, AssemblyState.loads)
