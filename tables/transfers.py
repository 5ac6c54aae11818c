"""The S3 transfer table: one :class:`~tables.transfer_record.TransferRecord` per file, RocksDB with a changelog.

Keys are the file identity bytes, like the reassembly tables, so a record lives in the
partition of the file's chunks and completed-file events.
"""

from __future__ import annotations

from collections.abc import Iterator

from tables.files import bytes_table
from tables.transfer_record import TransferRecord

transfers = bytes_table("transfers", "Per-file S3 transfer state (tables.transfer_record.TransferRecord)", 1000)


def load_transfer(file_key: bytes) -> TransferRecord | None:
    raw = transfers.get(file_key)
    return None if raw is None else TransferRecord.loads(raw)


def save_transfer(file_key: bytes, record: TransferRecord) -> None:
    transfers[file_key] = record.dumps()


def iter_transfers() -> Iterator[tuple[bytes, TransferRecord]]:
    """Every record of the partitions this worker actively owns."""
    for key, raw in transfers.items():
        yield key, TransferRecord.loads(raw)
