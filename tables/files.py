"""The reassembly tables: per-file assembly state and the chunk payloads, both RocksDB with changelogs.

Keys are bytes (the file identity), so ``table_route`` can find the worker that owns a file.
Payload keys extend the file key with the assembly epoch and the chunk index; the
file key never holds a NUL, so the separator is unambiguous.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from app import app, settings
from tables.assembly import AssemblyState

# RocksDB's own caches, kept small: payloads are written once and read once, so a big
# block cache only inflates the worker's RSS (Faust's default is 2 GiB per table).
_ROCKSDB_OPTIONS = {
    "block_cache_size": 16 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 2,
}
_EPOCH_AND_INDEX = struct.Struct(">II")


def bytes_table(name: str, help: str, recovery_buffer_size: int):
    return app.Table(
        name,
        key_type=bytes,  # bytes types make Faust store and log keys and values raw
        value_type=bytes,
        partitions=settings.partitions,
        options=dict(_ROCKSDB_OPTIONS),
        recovery_buffer_size=recovery_buffer_size,
        extra_topic_configs=settings.topic_configs,
        standby_buffer_size=recovery_buffer_size,
        help=help,
    )


assemblies = bytes_table("assemblies", "Per-file assembly state (tables.assembly.AssemblyState)", 1000)
# Recovery buffers whole changelog records in memory: with chunk-sized values, keep it short.
payloads = bytes_table("payloads", "Chunk payloads of files being assembled or still needed downstream", 16)


def payload_key(file_key: bytes, epoch: int, index: int) -> bytes:
    return file_key + b"\x00" + _EPOCH_AND_INDEX.pack(epoch, index)


def load_state(file_key: bytes) -> AssemblyState | None:
    raw = assemblies.get(file_key)
    return None if raw is None else AssemblyState.loads(raw)


def save_state(file_key: bytes, state: AssemblyState) -> None:
    assemblies[file_key] = state.dumps()


def iter_payloads(file_key: bytes, epoch: int, chunk_count: int) -> Iterator[tuple[int, bytes | None]]:
    for index in range(chunk_count):
        yield index, payloads.get(payload_key(file_key, epoch, index))


def delete_payloads(file_key: bytes, epoch: int, indices: list[int]) -> None:
    for index in indices:
        key = payload_key(file_key, epoch, index)
        if key in payloads:
            del payloads[key]
