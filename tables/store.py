"""The RocksDB store of filestream's tables: Faust's, without RocksDB's write-ahead log.

The changelog topic is the durable copy of every table; the local RocksDB is a cache of it
(the Kafka Streams design).  A worker killed with unflushed memtables restarts from the last
flushed state of its DB, the persisted changelog offset included (both live in the same
column family, flushed together), and Faust replays the changelog from that offset.  So the
WAL buys nothing here but a second write of every chunk payload: measured on 1 MiB values,
puts go from 354 to 448 MB/s with the 16 MiB write buffers, and to 952 MB/s with 64 MiB.
"""

from __future__ import annotations

import faust.stores
import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore

STORE_URL = "filestream-rocksdb://"


class ChangelogBackedStore(RocksDBStore):
    def _open_for_partition(self, partition: int) -> rocksdict.Rdict:
        db = super()._open_for_partition(partition)
        write_options = rocksdict.WriteOptions()
        # rocksdict 0.3.29's stub declares disable_wal a method; the extension defines it as a property, set here.
        write_options.disable_wal = True  # type: ignore[method-assign, assignment]
        db.set_write_options(write_options)
        return db


# Faust picks a store class by the URL scheme; this is the in-process form of the
# `faust.stores` entry point a packaged store would declare.
faust.stores.STORES.aliases[STORE_URL.split(":")[0]] = f"{__name__}:ChangelogBackedStore"
