"""Atomic local file writes: a reader sees the old file or the whole new one, never a partial one."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from errors import IdentityError

if TYPE_CHECKING:
    from models.identity import FileId


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import, while no other thread can be changing it: os.umask can only be read by setting it.
_UMASK = _current_umask()


class AtomicFile:
    """Write into a hidden temp sibling; :meth:`commit` fsyncs it and renames it over ``dest``.

    Leaving the ``with`` block without :meth:`commit` (an error, a mismatched hash, Ctrl-C)
    removes the temp file and leaves ``dest`` as it was.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=_temp_prefix(dest), suffix=".part", dir=dest.parent)
        self.temp_path = Path(temp_name)
        # mkstemp creates 0600; the finished file gets the mode any newly created file would.
        os.fchmod(fd, 0o666 & ~_UMASK)
        self._file = os.fdopen(fd, "wb")
        self.committed = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp_path, self.dest)
        _fsync_directory(self.dest.parent)
        self.committed = True
        _remove_abandoned_temp_files(self.dest)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.committed:
            self.discard()


def publish_file(source: Path, dest: Path) -> None:
    """Put the complete, verified file ``source`` at ``dest`` atomically; ``source`` stays as it is.

    A hard link when both are on one file system (no byte is copied: the spool file's inode
    becomes the output file), else a copy (the kernel's copy_file_range or sendfile).  Either
    way it goes through a hidden temp sibling that is fsynced and renamed into place, so a
    reader sees the old file or the whole new one.  Raises OSError (a directory in the way, a
    file where a directory must be, permissions, disk full, a name too long) and leaves
    nothing behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=_temp_prefix(dest), suffix=".part", dir=dest.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        temp.unlink()  # os.link needs a free name: the name was reserved against other writers' temp files
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        os.chmod(temp, 0o666 & ~_UMASK)
        with temp.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(dest.parent)
    _remove_abandoned_temp_files(dest)


# Room for the name in a temp file's name: with the dot, a digest and mkstemp's ".XXXXXXXX.part"
# it stays far below the 255 bytes a file name may have.
_TEMP_NAME_BYTES = 100
# What tempfile.mkstemp puts between prefix and suffix: 8 of "a-z0-9_" (CPython's _RandomNameSequence).
_MKSTEMP_RANDOM = "[a-z0-9_]" * 8


def _temp_prefix(dest: Path) -> str:
    """``.<name>.``, or for a name longer than 100 UTF-8 bytes its first 100 and a digest of the whole.

    Bytes, not characters: a valid name of 85 CJK characters is 255 bytes.  The digest keeps
    two long names that start alike from sharing a prefix, so one's sweep never takes the other's.
    """
    name = dest.name
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= _TEMP_NAME_BYTES:
        return f".{name}."
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    return f".{encoded[:_TEMP_NAME_BYTES].decode('utf-8', 'ignore')}~{digest}."


def _remove_abandoned_temp_files(dest: Path) -> None:
    """Temp files of earlier writes of ``dest`` that a killed process left behind.

    Only one writer at a time works on a destination (the worker owning the file's
    partition, or one download job), so once a write has landed, any other temp
    file of the same destination belongs to a write that will never finish.  Exactly
    mkstemp's random part between prefix and suffix: ``.data.*.part`` would also take the
    temp file of ``data.csv``, which another writer may be filling right now.
    """
    for leftover in dest.parent.glob(glob.escape(_temp_prefix(dest)) + _MKSTEMP_RANDOM + ".part"):
        leftover.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable, not just the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UnsafeDestination(IdentityError, ValueError):
    """A destination that would resolve outside the output directory."""


def safe_destination(output_dir: Path, file_id: FileId) -> Path:
    """``file_id``'s path under ``output_dir``, refusing one that a symlink would lead outside it.

    Identity validation already refuses absolute paths and '..'; this also catches a
    directory inside the output tree that is a symlink to elsewhere.
    """
    return confined_destination(output_dir, file_id.destination(output_dir), str(file_id))


def confined_destination(output_dir: Path, dest: Path, label: str) -> Path:
    """``dest`` (lexically under ``output_dir``), refused if its directory is reached through a symlink
    leading outside ``output_dir`` or if it is a symlink itself; ``label`` names what is written there.
    """
    root = Path(os.path.realpath(output_dir))
    if not Path(os.path.realpath(dest.parent)).is_relative_to(root) or dest.is_symlink():
        raise UnsafeDestination(f"{label}: destination {dest} resolves outside the output directory {root}")
    return dest
