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

from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import faust
from faust.types import TP

from app import app, chunks_topic, settings
from errors import FilestreamError
from tables.assembly import AssemblyState
from tables.census import ASSEMBLY_RULES, Census, CensusRules

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


class _Restores:
    """The assignment (consumer generation) the tables were last restored for, and how many restores ended."""

    generation = 0  # Faust's consumer generation before the first assignment: nothing to restore
    ended = 0


_restores = _Restores()


# mode types a signal handler as taking any positional arguments; Faust sends this signal none.
@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _note_restore_ended(sender: Any, **kwargs: Any) -> None:
    # Faust sends it when the restore of an assignment's tables has applied every changelog record.
    _restores.generation = app.consumer_generation_id
    _restores.ended += 1


def tables_epoch() -> tuple[int, int] | None:
    """What changes with every assignment and every restore; None while the tables are not ready.

    Not ready: a rebalance under way, or a restore under way or not yet begun for the current
    assignment (Faust's ``in_recovery`` is set only once the restore task runs, after the
    assignment is in place).  The count of restores tells apart a restore that ends after the
    assignment changed again from the next one, which restores the same assignment anew.
    """
    if app.rebalancing or app.in_recovery or _restores.generation != app.consumer_generation_id:
        return None
    return (app.consumer_generation_id, _restores.ended)


def tables_ready() -> bool:
    """Whether this worker's tables hold every record of its current assignment's partitions."""
    return tables_epoch() is not None


def active_partitions() -> set[int]:
    """The partitions this worker actively owns: of the chunk topic, and so of every table."""
    topic = chunks_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def partition_entries(table: faust.types.TableT[bytes, bytes], partition: int) -> Iterator[tuple[bytes, bytes]]:
    """The raw entries of one partition this worker actively owns, as a snapshot taken at the first one.

    Reads that partition's RocksDB alone (Faust's store has no public per-partition reading;
    ``_db_for_partition`` and ``_visible_items`` are faust-streaming 0.11-0.15's).
    """
    store: Any = table.data
    changelog = TP(topic=table.changelog_topic.get_topic_name(), partition=partition)
    if changelog in app.assignor.assigned_actives():
        yield from store._visible_items(store._db_for_partition(partition))


def read_value(table: faust.types.TableT[bytes, bytes], key: bytes) -> bytes | None:
    """``table.get(key)`` in one store read: Faust's own asks the store ``key in`` before ``[key]``
    (mode's FastUserDict), two RocksDB reads for one.  Counted in the table's metrics all the same."""
    table.on_key_get(key)
    return table.data.get(key)


def partitioned_store(table: faust.types.TableT[bytes, bytes]) -> bool:
    """False for Faust's memory store (the in-process tests), which keeps every partition in one dict."""
    return hasattr(table.data, "_db_for_partition")


def current_partition() -> int:
    event = faust.current_event()
    if event is None:
        raise RuntimeError("tables are written only while an event of the key's partition is handled")
    return int(event.message.partition)


class RecordTable(Generic[R]):
    """One table's values as records of one class, counted by a :class:`~tables.census.Census` as they change."""

    def __init__(
        self,
        table: faust.types.TableT[bytes, bytes],
        loads: Any,
        census_rules: CensusRules[R],
        partition_of: Callable[[R], int],
    ) -> None:
        self.table = table
        self._loads = loads
        self._partition_of = partition_of
        self.census: Census[R] = Census(census_rules, self.partition_items, tables_epoch)

    def load(self, key: bytes) -> R | None:
        raw = read_value(self.table, key)
        return None if raw is None else self._loads(raw)

    def save(self, key: bytes, record: R) -> None:
        ensure_assignment_current()
        raw = record.dumps()
        # A copy for the census: callers go on changing their records (AssemblyState.finish).
        self.census.saved(current_partition(), key, lambda: self._loads(raw), lambda: self.load(key))
        self.table[key] = raw

    def delete(self, key: bytes) -> None:
        """Delete ``key``'s record, which must exist; its tombstone goes to the current event's changelog partition."""
        ensure_assignment_current()
        self.census.removed(current_partition(), key, lambda: self.load(key))
        del self.table[key]

    def partition_items(self, partition: int) -> Iterator[tuple[bytes, R]]:
        """The records of one partition this worker actively owns (see :func:`partition_entries`)."""
        if partitioned_store(self.table):
            for key, raw in partition_entries(self.table, partition):
                yield key, self._loads(raw)
            return
        for key, record in list(self.items()):  # a snapshot, as a RocksDB iterator reads
            if self._partition_of(record) == partition:
                yield key, record

    def items(self) -> Iterator[tuple[bytes, R]]:
        """Every record of the partitions this worker actively owns."""
        for key, raw in self.table.items():
            yield key, self._loads(raw)


assemblies_table = bytes_table("assemblies", "Per-file assembly state (tables.assembly.AssemblyState)")
assemblies: RecordTable[AssemblyState] = RecordTable(
    assemblies_table, AssemblyState.loads, ASSEMBLY_RULES, lambda state: state.partition
)
