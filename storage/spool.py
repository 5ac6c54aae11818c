"""The worker's local copy of the chunk payloads it still needs: one sparse file per file generation.

Why files on local disk and not a changelogged table: the chunk topic already holds every
payload durably, so a second durable copy in a changelog doubles what the broker receives
(the design of Kafka Streams, whose source topic is the changelog of a source table).  Each
payload is written once, at its offset, into ``<root>/p<partition>/<key digest>-<epoch>``;
completion reads the file once to verify it and links (or copies) it into the output
directory, and the S3 transfer reads it once more.  What survives a crash is the chunk
topic: the worker never commits a chunk's offset while its file is unsettled (see
agents/reassembly.py), and a spool it did not write in this process is never trusted, so
after a restart or a takeover the replayed chunks fill the spool again.

Which chunks a spool file holds is known only in memory (:class:`~tables.chunk_set.ChunkSet`
per file generation): it is exactly what this process wrote.  No Faust, no boto3.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tables.chunk_set import ChunkSet

log = logging.getLogger(__name__)

READ_BLOCK = 1024**2


@dataclass(frozen=True)
class SpoolKey:
    partition: int
    file_key: bytes
    epoch: int


@dataclass(frozen=True)
class Digests:
    """What one read of a spool file proves: its size, its hashes, its CRC32."""

    size: int
    hashes: dict[str, str]  # hashlib name -> hex digest
    crc32: int


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._present: dict[SpoolKey, ChunkSet] = {}

    def wipe(self) -> None:
        """Forget everything: a process never trusts a spool it did not write itself."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._present.clear()

    def path(self, key: SpoolKey) -> Path:
        digest = hashlib.sha256(key.file_key).hexdigest()[:40]
        return self.root / f"p{key.partition}" / f"{digest}-{key.epoch}"

    def write(self, key: SpoolKey, index: int, offset: int, payload: bytes | memoryview) -> None:
        """Put chunk ``index`` at ``offset``; the kernel's page cache makes this a memory copy."""
        path = self.path(key)
        if key not in self._present:
            # What an earlier process left at this name is not this Spool's: its bytes must not
            # pass for ours, and it may be the inode of a published output file (publish_file
            # links), which writing into would change.  So a new file, never a stale one.
            path.unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            written = os.pwrite(fd, payload, offset)
        finally:
            os.close(fd)
        if written != len(payload):
            raise OSError(f"short write to the spool: {written} of {len(payload)} bytes")
        self._present.setdefault(key, ChunkSet()).add(index)

    def holds(self, key: SpoolKey, index: int) -> bool:
        present = self._present.get(key)
        return present is not None and index in present

    def count(self, key: SpoolKey) -> int:
        present = self._present.get(key)
        return 0 if present is None else len(present)

    def complete(self, key: SpoolKey, chunk_count: int) -> bool:
        return self.count(key) == chunk_count

    def missing(self, key: SpoolKey, chunk_count: int, limit: int = 20) -> list[int]:
        return self._present.get(key, ChunkSet()).missing(chunk_count, limit)

    def discard(self, key: SpoolKey) -> None:
        self._present.pop(key, None)
        self.path(key).unlink(missing_ok=True)

    def forget_partition(self, partition: int) -> None:
        """The partition went to another worker: its spool files are of no use here any more."""
        for key in [key for key in self._present if key.partition == partition]:
            del self._present[key]
        shutil.rmtree(self.root / f"p{partition}", ignore_errors=True)

    def keys(self) -> Iterator[SpoolKey]:
        return iter(list(self._present))

    def __len__(self) -> int:
        return len(self._present)

    def digests(self, key: SpoolKey, hash_names: set[str]) -> Digests:
        """Read the spool file once (in a worker thread: hashlib and zlib release the GIL on big blocks)."""
        hashers = {name: hashlib.new(name) for name in hash_names}
        crc = 0
        size = 0
        with self.path(key).open("rb", buffering=0) as spooled:
            while block := spooled.read(READ_BLOCK):
                for hasher in hashers.values():
                    hasher.update(block)
                crc = zlib.crc32(block, crc)
                size += len(block)
        return Digests(size, {name: hasher.hexdigest() for name, hasher in hashers.items()}, crc)
