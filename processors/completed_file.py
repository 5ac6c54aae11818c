"""A completed file as processors see it, pinned to the version its completed-file event describes.

The worker writes a completed file into the output directory with an atomic rename, and a
newer generation of the same file replaces it the same way, possibly between the event and
the moment a processor runs.  So before a processor runs, :class:`PinnedOutput` opens the
file once and checks it:

- The open descriptor keeps that exact version readable while it stays open, even if the
  path is replaced meanwhile (a rename never changes an open file).  Every reader from
  :meth:`CompletedFile.open` reads through it.
- Its size must be the event's; otherwise a newer version is already there: *superseded*.
- Each reader hashes what it reads in order.  A reader that has read the whole file with a
  SHA-256 other than the event's proves a same-size replacement: *superseded*.  Readers
  buffer :data:`READ_BUFFER_BYTES`, so any read of a file up to that size reads it whole.
- After the processor returns, the path must still name the opened file; otherwise it was
  replaced while the processor ran, and a processor that opened ``path`` itself may have
  read the newer version: *superseded*.

The whole file is deliberately *not* hashed before the processor runs: that would double
the I/O of every processor on large files, to catch the one case left open (a same-size
replacement before the open, seen by a processor that does not read the whole file through
:meth:`CompletedFile.open`).  In that case nothing is lost: the newer version's own event
follows and runs the processor again on the same bytes.  Nor is the file's mtime compared
with the event's time: a clock step would make a file *superseded* that no newer event will
ever bring back, so it would silently never be processed.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from errors import ProcessorError
from models.events import FileEvent
from models.identity import FileId

READ_BUFFER_BYTES = 1024**2


class Superseded(ProcessorError):
    """The output file no longer holds the version of the file the event describes."""


class OutputUnavailable(ProcessorError):
    """There is no output file to process."""


class PinnedOutput:
    """The event's output file, open for the length of one processor run (see the module docstring)."""

    def __init__(self, event: FileEvent) -> None:
        if event.output_path is None:
            raise OutputUnavailable("the worker that completed the file did not write it to its output directory")
        self.path = Path(event.output_path)
        self.expected_hash = event.file_hash
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise OutputUnavailable(f"output file {self.path} does not exist") from None
        self._opened = os.fstat(self.fd)
        self.size = self._opened.st_size
        self.hash_mismatch = False
        if self.size != event.file_size:
            self.close()
            raise Superseded(
                f"the output file holds {self.size} bytes, not the event's {event.file_size}: "
                "a newer version replaced it"
            )

    def superseded_reason(self) -> str | None:
        """Why the run no longer describes the event's version, or None if it still does."""
        if self.hash_mismatch:
            return "the bytes read do not match the event's SHA-256: a newer version of the same size replaced the file"
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return "the output file was removed while the processor ran"
        if (now.st_dev, now.st_ino) != (self._opened.st_dev, self._opened.st_ino):
            return "a newer version replaced the output file while the processor ran"
        return None

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> PinnedOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _VerifyingReader(io.RawIOBase):
    """Positional reads of the pinned descriptor, with a position of its own, hashing what it reads in order.

    Seeking back and re-reading keeps the hash going; a seek past the hashed part stops it
    from advancing until the reader comes back there, so only a sequential cover of the whole
    file is compared with the event's hash.
    """

    def __init__(self, pinned: PinnedOutput) -> None:
        super().__init__()
        self._pinned = pinned
        self._position = 0
        self._hasher = hashlib.sha256()
        self._hashed = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self._pinned.fd, len(view), self._position)
        count = len(data)
        view[:count] = data
        self._hash(self._position, data)
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._pinned.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def _hash(self, start: int, data: bytes) -> None:
        end = start + len(data)
        if not start <= self._hashed < end:
            return
        self._hasher.update(memoryview(data)[self._hashed - start :])
        self._hashed = end
        if self._hashed >= self._pinned.size and self._hasher.hexdigest() != self._pinned.expected_hash:
            self._pinned.hash_mismatch = True


@dataclass(frozen=True)
class CompletedFile:
    """One completed file, handed to a processor or reproducer.

    ``path`` is the file in the worker's output directory.  Prefer :meth:`open`: it reads the
    exact version this event describes even if a newer one replaces ``path`` meanwhile, and it
    streams, so a file of any size is read in bounded memory.  Readers are valid only while
    the processor runs.
    """

    file_id: FileId
    generation: int | None
    size: int
    sha256: str
    first_chunk_at: float
    finished_at: float
    path: Path
    _pinned: PinnedOutput = field(repr=False, compare=False)

    @classmethod
    def from_event(cls, event: FileEvent, pinned: PinnedOutput) -> CompletedFile:
        return cls(
            file_id=event.file_id,
            generation=event.generation,
            size=pinned.size,  # the event's size: PinnedOutput refuses any other
            sha256=event.file_hash,
            first_chunk_at=event.first_chunk_at,
            finished_at=event.finished_at,
            path=pinned.path,
            _pinned=pinned,
        )

    @property
    def source(self) -> str:
        return self.file_id.source

    @property
    def relative_path(self) -> str:
        """The file's path relative to its source's upload root, as uploaded (``run1/data.csv``)."""
        return self.file_id.path

    @property
    def output_dir(self) -> Path:
        """The worker's output directory, for a processor's own outputs (reports) next to the files."""
        return self.path.parents[len(PurePosixPath(self.relative_path).parts)]

    def open(self) -> BinaryIO:
        """A buffered binary reader of the whole file (seekable; use it in a ``with`` block)."""
        return io.BufferedReader(_VerifyingReader(self._pinned), buffer_size=READ_BUFFER_BYTES)

    def read_bytes(self) -> bytes:
        """The whole file in memory: only for files known to be small."""
        with self.open() as reader:
            return reader.read()
