"""OpenMSIStream 1.8 chunk records, read as :class:`~models.chunk.FileChunk`.

OpenMSIStream's ``DataFileChunkSerializer`` packs each chunk as one msgpack array::

    [filename, file_hash, chunk_hash, chunk_offset_write, chunk_i, n_total_chunks,
     subdir_str, filename_append, data]                      (9 fields, before 1.8)
    [..., data, file_mtime]                                   (10 fields; 0.0 = no mtime)

Hashes are SHA-512 digests (raw bytes) of the whole file and of the chunk; ``chunk_i`` counts
from 1.  A record names neither its file's size (known once every chunk is in) nor a
generation number (the directional policy of :func:`tables.assembly.decide` applies).
The message key, ``{subdir}_{filename}_chunk_{i}_of_{n}``, differs per chunk and is not read:
the file identity comes from the value.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

import msgpack

from models.bounds import ChunkBoundsError, ChunkLimits, check_layout
from models.chunk import DEFAULT_LIMITS, ChunkDecodeError, FileChunk
from models.identity import FileId, InvalidIdentity

HASH_NAME = "sha512"
DEFAULT_SOURCE = "openmsistream"
_DIGEST_BYTES = 64
_FIELD_COUNTS = (9, 10)
# msgpack's one-byte header of an array of 9 or 10 elements (fixarray, what msgpack.packb writes).
ARRAY_MARKERS = frozenset(0x90 | count for count in _FIELD_COUNTS)


def decode_openmsistream_chunk(
    value: bytes | None, source: str = DEFAULT_SOURCE, limits: ChunkLimits = DEFAULT_LIMITS
) -> FileChunk:
    """Parse and check one OpenMSIStream chunk message value as a chunk of file ``source/<subdir>/<name>``.

    Raises :class:`ChunkDecodeError` saying what is wrong.  The payload's hash is checked by
    the caller (:meth:`FileChunk.payload_is_intact`), as for filestream's own records.
    """
    if not value:
        raise ChunkDecodeError("empty message, not an OpenMSIStream chunk record")
    try:
        fields = msgpack.unpackb(value, raw=True)
    except ValueError as exc:
        raise ChunkDecodeError(f"garbled msgpack, not an OpenMSIStream chunk record: {exc}") from None
    if not isinstance(fields, list) or len(fields) not in _FIELD_COUNTS:
        shape = f"an array of {len(fields)}" if isinstance(fields, list) else f"a {type(fields).__name__}"
        raise ChunkDecodeError(f"not an OpenMSIStream chunk record: msgpack {shape}, expected 9 or 10 fields")
    filename = _text(fields[0], "filename")
    file_hash = _digest(fields[1], "file_hash")
    chunk_hash = _digest(fields[2], "chunk_hash")
    offset = _integer(fields[3], "chunk_offset_write")
    chunk_i = _integer(fields[4], "chunk_i")
    chunk_count = _integer(fields[5], "n_total_chunks")
    subdir = _text(fields[6], "subdir_str")
    filename_append = _text(fields[7], "filename_append")
    payload = fields[8]
    if not isinstance(payload, bytes):
        raise ChunkDecodeError(f"field 'data' is a {type(payload).__name__}, not bytes")
    if not 1 <= chunk_i <= chunk_count:
        raise ChunkDecodeError(f"chunk_i {chunk_i} outside 1..{chunk_count}")
    if offset < 0:
        raise ChunkDecodeError(f"negative chunk_offset_write {offset}")
    try:
        check_layout(
            file_size=None,
            chunk_count=chunk_count,
            index=chunk_i - 1,
            offset=offset,
            length=len(payload),
            limits=limits,
        )
    except ChunkBoundsError as exc:
        raise ChunkDecodeError(str(exc)) from None
    return FileChunk(
        source=source,
        path=_relative_path(subdir, filename, filename_append, source),
        generation=None,
        file_hash=file_hash,
        file_size=None,
        chunk_count=chunk_count,
        index=chunk_i - 1,
        offset=offset,
        chunk_hash=chunk_hash,
        payload=payload,
        mtime=_mtime(fields[9]) if len(fields) == 10 else None,
        hash_name=HASH_NAME,
    )


def _reconstructed_name(filename: str, filename_append: str) -> str:
    """The name OpenMSIStream writes: ``filename_append`` goes between the stem and the last suffix."""
    name = PurePosixPath(filename)
    return f"{name.stem}{filename_append}{name.suffix}"


def _relative_path(subdir: str, filename: str, filename_append: str, source: str) -> str:
    if filename in ("", ".", "..") or "/" in filename or "/" in filename_append:
        raise ChunkDecodeError(f"bad file identity: {filename!r} + {filename_append!r} is not a file name")
    name = _reconstructed_name(filename, filename_append)
    path = f"{subdir}/{name}" if subdir else name
    try:
        FileId(source, path)
    except InvalidIdentity as exc:
        raise ChunkDecodeError(f"bad file identity: {exc}") from None
    return path


def _text(raw: Any, name: str) -> str:
    if not isinstance(raw, bytes):
        raise ChunkDecodeError(f"field {name!r} is a {type(raw).__name__}, not a string")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ChunkDecodeError(f"field {name!r} is not UTF-8: {raw[:80]!r}") from None


def _digest(raw: Any, name: str) -> str:
    if not isinstance(raw, bytes) or len(raw) != _DIGEST_BYTES:
        raise ChunkDecodeError(f"field {name!r} is not a SHA-512 digest of {_DIGEST_BYTES} bytes: {raw!r:.80}")
    return raw.hex()


def _integer(raw: Any, name: str) -> int:
    if type(raw) is not int:
        raise ChunkDecodeError(f"field {name!r} is not an integer: {raw!r:.80}")
    return raw


def _mtime(raw: Any) -> float | None:
    if type(raw) not in (int, float) or not math.isfinite(raw):
        raise ChunkDecodeError(f"field 'file_mtime' is not a finite number: {raw!r:.80}")
    # OpenMSIStream writes 0.0 when it did not capture the mtime.
    return float(raw) if raw > 0 else None
