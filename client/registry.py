"""What the uploader has sent, so that nothing is sent twice, even across restarts; and generation numbers.

Stored with sqlite3 rather than a JSON file rewritten atomically: every acknowledged
file is committed on its own, and sqlite does that with a small WAL append, where a
JSON registry of a 100 000-file tree would be rewritten (megabytes) after every file.
sqlite's locking also keeps two uploaders sharing a data dir from losing each other's
updates.  ``synchronous=NORMAL`` skips the fsync per commit: a power cut can forget
the last few files, which are then sent again, harmless for idempotent consumers.

Rows are per chunks topic, so pointing the uploader at another topic sends everything
to it.  Delete the registry file to make the uploader send everything again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from client.discovery import FileSignature
from models.identity import FileId

REGISTRY_FILE = Path("uploader") / "registry.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    topic TEXT NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    last_generation INTEGER NOT NULL,  -- highest generation ever put on the wire, sent or not
    sent_generation INTEGER,           -- the sent_* columns describe the last fully acknowledged upload
    sent_size INTEGER,
    sent_mtime_ns INTEGER,
    sent_hash TEXT,
    sent_at REAL,
    PRIMARY KEY (topic, source, path)
)
"""


def next_generation(previous: int | None, now_us: int) -> int:
    """Grows with every new upload of a path, and stays ahead of every earlier one even without the registry.

    The clock makes the number survive a lost registry (a new uploader's microsecond
    timestamp is above any earlier one); ``previous + 1`` keeps it growing when the
    clock stands still or steps back.
    """
    return now_us if previous is None else max(previous + 1, now_us)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class SentFile:
    generation: int
    signature: FileSignature
    file_hash: str


class Registry:
    def __init__(self, database: Path, topic: str) -> None:
        database.parent.mkdir(parents=True, exist_ok=True)
        self.database = database
        self.topic = topic
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) where they matter.
        self._db = sqlite3.connect(database, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    @classmethod
    def in_data_dir(cls, data_dir: Path, topic: str) -> Registry:
        return cls(data_dir / REGISTRY_FILE, topic)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sent(self, file_id: FileId) -> SentFile | None:
        row = self._db.execute(
            "SELECT sent_generation, sent_size, sent_mtime_ns, sent_hash FROM files"
            " WHERE topic = ? AND source = ? AND path = ? AND sent_generation IS NOT NULL",
            (self.topic, file_id.source, file_id.path),
        ).fetchone()
        if row is None:
            return None
        generation, size, mtime_ns, file_hash = row
        return SentFile(generation, FileSignature(size, mtime_ns), file_hash)

    def is_sent(self, file_id: FileId, signature: FileSignature) -> bool:
        """Was this file sent and acknowledged with exactly this size and modification time?"""
        sent = self.sent(file_id)
        return sent is not None and sent.signature == signature

    def allocate_generation(self, file_id: FileId, now: int | None = None) -> int:
        """The generation for a new upload of ``file_id``, remembered before the first chunk leaves.

        Remembering it even if the upload then fails keeps generations growing when the
        clock steps back, so a retry can never look older than the attempt it replaces.
        """
        key = (self.topic, file_id.source, file_id.path)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT last_generation FROM files WHERE topic = ? AND source = ? AND path = ?", key
            ).fetchone()
            generation = next_generation(row[0] if row else None, now_us() if now is None else now)
            self._db.execute(
                "INSERT INTO files (topic, source, path, last_generation) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (topic, source, path) DO UPDATE SET last_generation = excluded.last_generation",
                (*key, generation),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return generation

    def record_sent(self, file_id: FileId, generation: int, signature: FileSignature, file_hash: str) -> None:
        """Call only once the broker has acknowledged every chunk of this generation."""
        self._db.execute(
            "INSERT INTO files (topic, source, path, last_generation, sent_generation, sent_size, sent_mtime_ns,"
            " sent_hash, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (topic, source, path) DO UPDATE SET"
            " last_generation = max(last_generation, excluded.last_generation),"
            " sent_generation = excluded.sent_generation, sent_size = excluded.sent_size,"
            " sent_mtime_ns = excluded.sent_mtime_ns, sent_hash = excluded.sent_hash, sent_at = excluded.sent_at",
            (
                self.topic,
                file_id.source,
                file_id.path,
                generation,
                generation,
                signature.size,
                signature.mtime_ns,
                file_hash,
                time.time(),
            ),
        )
