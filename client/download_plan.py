"""The download plan: which stored objects go to which local files, decided before anything is written.

Pure: it sees keys and object descriptions (:class:`storage.s3.StoredObject`) and asks
the file system only through the ``exists`` function it is given.  Everything that
would make a download stop half-way is refused here, each kind in one error that
lists every case (the first 20, then a count), so nothing is written when it fails:

- a key that is not ``<bucket prefix>/<source>/<path>`` with a valid source name and a
  safe relative path (absolute, ``..``, NUL, backslash, control characters...): such a
  key could escape DEST.  These are the :mod:`models.identity` rules the upload side obeys;
- a name the layout cannot map (``flat``, below);
- an object without a full-object CRC32, whose download could not be verified;
- two objects for one destination, or a destination another one needs as a directory
  (the error names both objects);
- with overwrite off, destinations that already exist.

Layouts, with ``source`` and ``path`` as the key gives them:

``mirror``
    ``DEST/<source>/<path>``: the bucket's tree below the prefix.
``flat``
    ``DEST/<source>__<path with every "/" replaced by "__">``: every file in one directory.
    A source or path segment that already holds ``__`` is refused, so that ``__`` always
    marks a directory boundary; so is a flattened name longer than a file name may be
    (255 bytes).  Segments starting or ending with ``_`` are accepted: should two names
    then flatten to the same file, the conflict check refuses the pair.
``by_date``
    ``DEST/<YYYY-MM-DD>/<source>/<path>``, dated by the UTC day the object was stored
    (its Last-Modified), so that each day's arrivals land apart.

Order: the plan, and with it the list of written files, is sorted by object key (code
point order, which for UTF-8 keys is S3's listing order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from errors import ClientSideError
from models.identity import MAX_SEGMENT_BYTES, FileId, InvalidIdentity
from storage.objects import StoredObject, key_folder

FLAT_SEPARATOR = "__"
LISTED_AT_MOST = 20


class DownloadPlanError(ClientSideError, ValueError):
    """The selection or the plan is refused; nothing has been written."""


@dataclass(frozen=True)
class Selection:
    """Which objects to download, judged by their name ``source/path`` (the key after the bucket prefix).

    Every criterion given must hold: the source is one of ``sources``, the name starts
    with ``prefix``, and ``match`` matches somewhere in the name (``re.search``).
    """

    sources: tuple[str, ...] = ()
    prefix: str = ""
    match: re.Pattern[str] | None = None

    def selects(self, name: str) -> bool:
        return (
            (not self.sources or name.partition("/")[0] in self.sources)
            and name.startswith(self.prefix)
            and (self.match is None or self.match.search(name) is not None)
        )

    def __str__(self) -> str:
        criteria = [f"--source {source}" for source in self.sources]
        if self.prefix:
            criteria.append(f"--prefix {self.prefix}")
        if self.match is not None:
            criteria.append(f"--match {self.match.pattern}")
        return " ".join(criteria) or "no filter"


@dataclass(frozen=True)
class PlannedDownload:
    stored: StoredObject
    destination: Path
    file_id: FileId


@dataclass(frozen=True)
class DownloadPlan:
    dest: Path
    downloads: tuple[PlannedDownload, ...]  # sorted by key

    @property
    def total_bytes(self) -> int:
        return sum(download.stored.size for download in self.downloads)


def select_keys(keys: Iterable[str], *, bucket: str, bucket_prefix: str, selection: Selection) -> list[str]:
    """The keys below the bucket prefix that ``selection`` selects; selecting nothing is an error.

    Keys ending in ``/`` are folder markers some S3 tools create, not files: never selected.
    """
    folder = key_folder(bucket_prefix)
    selected = [
        key
        for key in keys
        if key.startswith(folder) and not key.endswith("/") and selection.selects(key[len(folder) :])
    ]
    if not selected:
        raise DownloadPlanError(f"nothing to download: no object in s3://{bucket}/{folder} matches ({selection})")
    return selected


def _mirror(dest: Path, file_id: FileId, stored: StoredObject) -> Path:
    return file_id.destination(dest)


def _flat(dest: Path, file_id: FileId, stored: StoredObject) -> Path:
    parts = [file_id.source, *file_id.path.split("/")]
    for part in parts:
        if FLAT_SEPARATOR in part:
            raise InvalidIdentity(f"{part!r} already holds the flat layout's separator {FLAT_SEPARATOR!r}")
    name = FLAT_SEPARATOR.join(parts)
    if len(name.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise InvalidIdentity(f"the flat name would be longer than a file name may be ({MAX_SEGMENT_BYTES} bytes)")
    return dest / name


def _by_date(dest: Path, file_id: FileId, stored: StoredObject) -> Path:
    return file_id.destination(dest / stored.last_modified.astimezone(UTC).strftime("%Y-%m-%d"))


Layout = Callable[[Path, FileId, StoredObject], Path]
LAYOUTS: dict[str, Layout] = {"mirror": _mirror, "flat": _flat, "by_date": _by_date}


def plan_downloads(
    objects: Iterable[StoredObject],
    *,
    bucket_prefix: str,
    dest: Path,
    layout: str,
    overwrite: bool,
    exists: Callable[[Path], bool],
) -> DownloadPlan:
    """Every object's destination under ``dest``, or :class:`DownloadPlanError` naming every problem of one kind."""
    try:
        place = LAYOUTS[layout]
    except KeyError:
        raise DownloadPlanError(f"unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}") from None
    folder = key_folder(bucket_prefix)
    downloads: list[PlannedDownload] = []
    refused: list[str] = []
    for stored in sorted(objects, key=lambda stored: stored.key):
        try:
            if not stored.key.startswith(folder):
                raise InvalidIdentity(f"not below the bucket prefix {folder!r}")
            file_id = FileId.from_key(stored.key[len(folder) :].encode("utf-8"))
            destination = place(dest, file_id, stored)
        except InvalidIdentity as exc:
            refused.append(f"{stored.key}: {exc}")
            continue
        if stored.checksum_problem is not None:
            refused.append(f"{stored.key}: cannot be verified, {stored.checksum_problem}")
            continue
        downloads.append(PlannedDownload(stored, destination, file_id))
    refuse(refused, "object(s) cannot be downloaded")
    refuse(_conflicts(downloads, dest), "destination conflict(s)")
    if not overwrite:
        existing = [str(download.destination) for download in downloads if exists(download.destination)]
        refuse(existing, "destination(s) already exist; use --overwrite to replace them")
    return DownloadPlan(dest, tuple(downloads))


def _conflicts(downloads: Sequence[PlannedDownload], dest: Path) -> list[str]:
    """Destinations written twice, and files where another download needs a directory."""
    writer: dict[Path, str] = {}
    conflicts: list[str] = []
    for download in downloads:
        if download.destination in writer:
            conflicts.append(
                f"{download.destination}: written for both {writer[download.destination]} and {download.stored.key}"
            )
        else:
            writer[download.destination] = download.stored.key
    for download in downloads:
        for directory in download.destination.parents:
            if directory == dest:
                break
            if directory in writer:
                conflicts.append(
                    f"{directory}: written for {writer[directory]}, but {download.stored.key} needs it as a directory"
                )
    return conflicts


def refuse(problems: Sequence[str], summary: str) -> None:
    """Raise :class:`DownloadPlanError` listing ``problems`` (the first 20, then a count), if there are any."""
    if not problems:
        return
    lines = [f"{len(problems)} {summary}:", *(f"  {problem}" for problem in problems[:LISTED_AT_MOST])]
    if len(problems) > LISTED_AT_MOST:
        lines.append(f"  ... and {len(problems) - LISTED_AT_MOST} more")
    raise DownloadPlanError("\n".join(lines))
