"""File identity: which source sent a file, and its path relative to that source's upload root.

The identity is the Kafka message key of every chunk of the file (so all its
chunks land on one partition) and decides where the file is written.  It comes
off the wire, so it is validated as hostile input: nothing it names may resolve
outside the output directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aiokafka.partitioner import murmur2

from errors import IdentityError

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
_SOURCE_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Unicode's control characters (category Cc): C0, DEL and C1.  C1 holds CSI (U+009B), which some
# terminals obey like ESC [, so a name printed in a log could rewrite what the reader sees.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidIdentity(IdentityError, ValueError):
    """A source name or relative path that cannot travel or cannot be written safely."""


def validate_source(source: str) -> str:
    # fullmatch, not match with "$": "$" also matches before a final newline ("lab\n").
    if not _SOURCE_RE.fullmatch(source) or source in (".", ".."):
        raise InvalidIdentity(f"source name {source!r} must be 1-128 of letters, digits, '.', '_', '-'")
    return source


def validate_relative_path(path: str) -> str:
    """Return ``path`` if it is a safe, normalised POSIX relative path; raise otherwise."""
    if not path:
        raise InvalidIdentity("empty path")
    if "\x00" in path:
        raise InvalidIdentity(f"path {path!r} contains a NUL byte")
    if "\\" in path:
        raise InvalidIdentity(f"path {path!r} contains a backslash")
    if path.startswith("/"):
        raise InvalidIdentity(f"path {path!r} is absolute")
    if _DRIVE_RE.match(path):
        raise InvalidIdentity(f"path {path!r} starts with a drive letter")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidIdentity(f"path {path!r} is not valid UTF-8") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidIdentity(f"path is {len(encoded)} bytes long, more than {MAX_PATH_BYTES}")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidIdentity(f"path {path!r} has an empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidIdentity(f"path {path!r} has a segment longer than {MAX_SEGMENT_BYTES} bytes")
        if _CONTROL_RE.search(segment):
            raise InvalidIdentity(f"path {path!r} contains a control character")
    return path


@dataclass(frozen=True, order=True)
class FileId:
    """``source`` + ``path``; as a key: ``b"source/path"`` (a source name never holds '/')."""

    source: str
    path: str

    def __post_init__(self) -> None:
        validate_source(self.source)
        validate_relative_path(self.path)

    @property
    def key(self) -> bytes:
        return f"{self.source}/{self.path}".encode()

    def __str__(self) -> str:
        return f"{self.source}/{self.path}"

    @classmethod
    def from_key(cls, key: bytes) -> FileId:
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidIdentity(f"key {key[:80]!r} is not UTF-8") from None
        source, sep, path = text.partition("/")
        if not sep:
            raise InvalidIdentity(f"key {text[:200]!r} has no 'source/path' form")
        return cls(source, path)

    @classmethod
    def from_local(cls, source: str, root: Path, file: Path) -> FileId:
        """Identity of ``file`` found under the upload root ``root``."""
        return cls(source, PurePosixPath(*file.relative_to(root).parts).as_posix())

    def destination(self, output_dir: Path) -> Path:
        """Where this file is written; validation guarantees it lies under ``output_dir``."""
        return output_dir / self.source / self.path


def file_partition(key: bytes, partitions: int) -> int:
    """The partition of a file's records: Kafka's default partitioner (aiokafka's, the upload command's) on its key."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
