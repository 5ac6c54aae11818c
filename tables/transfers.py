"""The S3 transfer table: one :class:`~tables.transfer_record.TransferRecord` per file, RocksDB with a changelog.

Keys are the file identity bytes, like the assembly table, so a record lives in the
partition of the file's chunks and completed-file events.
"""

from __future__ import annotations

from tables.census import TRANSFER_RULES
from tables.files import RecordTable, bytes_table
from tables.transfer_bookkeeping import UnsettledTransfers
from tables.transfer_record import TransferRecord


class _NotingRecords(RecordTable[TransferRecord]):
    """The transfer table, telling :data:`unsettled` of every record this worker writes or deletes."""

    def save(self, key: bytes, record: TransferRecord) -> None:
        super().save(key, record)
        unsettled.note(key, record)

    def delete(self, key: bytes) -> None:
        super().delete(key)
        unsettled.forget(key)


transfers_table = bytes_table("transfers", "Per-file S3 transfer state (tables.transfer_record.TransferRecord)")
transfers = _NotingRecords(transfers_table, TransferRecord.loads, TRANSFER_RULES, lambda record: record.partition)
# The keys of records with work ahead, so the reconciliation need not decode the whole table.
unsettled = UnsettledTransfers(transfers.items, transfers.load)
