"""Finding the files to upload under the PATH arguments.

Symlink policy: a symlink found while walking a directory is skipped with a log
line and never followed (it could pull in files from outside the tree, or loop).
A PATH given on the command line is taken as the user named it, even when it is a
symlink, as ``find -H`` does.  FIFOs, sockets and devices are skipped the same way:
reading a FIFO would block the uploader forever.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.identity import FileId, InvalidIdentity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSignature:
    """Size and modification time: what tells a changed file from an unchanged one without reading it."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileSignature:
        return cls(status.st_size, status.st_mtime_ns)


@dataclass(frozen=True)
class LocalFile:
    """A regular file to upload: its identity on the wire and where to read it."""

    file_id: FileId
    path: Path
    signature: FileSignature


@dataclass(frozen=True)
class Rejected:
    """A path that will not be uploaded.  ``failure`` is False for policy skips (symlinks, special files)."""

    path: Path
    reason: str
    failure: bool


def log_rejection(item: Rejected) -> None:
    if item.failure:
        log.error("%s: %s", item.path, item.reason)
    else:
        log.info("%s: %s", item.path, item.reason)


@dataclass(frozen=True)
class PathFilter:
    """``--include`` / ``--exclude`` regular expressions, searched in the POSIX path relative to the root."""

    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def compile(cls, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> PathFilter:
        return cls(tuple(map(re.compile, include)), tuple(map(re.compile, exclude)))

    def accepts(self, relative_path: str) -> bool:
        if self.include and not any(pattern.search(relative_path) for pattern in self.include):
            return False
        return not any(pattern.search(relative_path) for pattern in self.exclude)


@dataclass(frozen=True)
class Discovery:
    files: list[LocalFile]
    rejected: list[Rejected]


def discover(roots: Sequence[Path], source: str, path_filter: PathFilter = PathFilter()) -> Discovery:
    """Every file under ``roots`` that passes the filter, in a stable order, and every path turned away.

    A directory root's files are named relative to the directory; a file root is named
    by its own name.  Two roots yielding the same name would overwrite each other at
    the destination, so the second one is rejected.
    """
    files: list[LocalFile] = []
    rejected: list[Rejected] = []
    first_path_of: dict[FileId, Path] = {}
    for root in roots:
        for found in _walk_root(root, source, path_filter):
            if isinstance(found, Rejected):
                rejected.append(found)
            elif found.file_id in first_path_of:
                rejected.append(
                    Rejected(found.path, f"has the same name, {found.file_id}, as {first_path_of[found.file_id]}", True)
                )
            else:
                first_path_of[found.file_id] = found.path
                files.append(found)
    return Discovery(files, rejected)


def _walk_root(root: Path, source: str, path_filter: PathFilter) -> Iterator[LocalFile | Rejected]:
    try:
        status = root.stat()
    except OSError as exc:
        yield Rejected(root, f"cannot be read: {exc.strerror}", True)
        return
    # Resolved so that a symlinked root is followed once, here, and every path below it is real.
    real_root = root.resolve()
    if stat.S_ISDIR(status.st_mode):
        yield from _walk_directory(real_root, real_root, source, path_filter)
    elif stat.S_ISREG(status.st_mode):
        # Named by the PATH as given (a symlink's own name), read from its target.
        yield from _regular_file(source, root.parent, root, real_root, status, path_filter)
    else:
        yield Rejected(root, "skipped: not a regular file or directory", False)


def _walk_directory(
    base: Path, directory: Path, source: str, path_filter: PathFilter
) -> Iterator[LocalFile | Rejected]:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        yield Rejected(directory, f"directory cannot be listed: {exc.strerror}", True)
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            status = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield Rejected(path, f"cannot be read: {exc.strerror}", True)
            continue
        if stat.S_ISLNK(status.st_mode):
            yield Rejected(path, "skipped: symlinks are never followed", False)
        elif stat.S_ISDIR(status.st_mode):
            yield from _walk_directory(base, path, source, path_filter)
        elif stat.S_ISREG(status.st_mode):
            yield from _regular_file(source, base, path, path, status, path_filter)
        else:
            yield Rejected(path, "skipped: not a regular file", False)


def _regular_file(
    source: str, base: Path, named: Path, path: Path, status: os.stat_result, path_filter: PathFilter
) -> Iterator[LocalFile | Rejected]:
    """``named`` (relative to ``base``) gives the identity; ``path`` is where the bytes are read."""
    try:
        file_id = FileId.from_local(source, base, named)
    except InvalidIdentity as exc:
        yield Rejected(named, f"name cannot travel: {exc}", True)
        return
    if path_filter.accepts(file_id.path):
        yield LocalFile(file_id, path, FileSignature.of(status))
