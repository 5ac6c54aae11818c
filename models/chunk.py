"""The chunk record and its wire format.

A chunk message value is::

    b"FSC1" | header length (uint32, big-endian) | header (orjson) | payload (raw bytes)

The payload travels as it is, never base64 or JSON-escaped, so a 1 MiB chunk costs
a few hundred bytes more than its payload on the wire.  The message key is the
file identity (:attr:`models.identity.FileId.key`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from errors import RecordError
from models.bounds import ChunkBoundsError, ChunkLimits, check_layout
from models.identity import FileId, InvalidIdentity

MAGIC = b"FSC1"
_HEADER_LENGTH = struct.Struct(">I")
_PREFIX_SIZE = len(MAGIC) + _HEADER_LENGTH.size
MAX_HEADER_BYTES = 64 * 1024
HASH_NAME = "sha256"
# What a worker accepts when the caller names no limits: a record of up to 64 MiB, a file of up to 1 TiB.
DEFAULT_LIMITS = ChunkLimits(max_payload_bytes=64 * 1024**2, max_file_size=1024**4)


def digest(data: bytes) -> str:
    """Chunk and file hash: SHA-256, hex.  Hardware-accelerated (SHA-NI) at ~1.8 GB/s here."""
    return hashlib.sha256(data).hexdigest()


class ChunkDecodeError(RecordError, ValueError):
    """A message on the chunk topic that is not a well-formed chunk record."""


@dataclass(frozen=True, slots=True)
class FileChunk:
    """One piece of one generation of one file (encoded with :func:`encode_chunk`)."""

    source: str
    path: str
    generation: int | None
    file_hash: str
    file_size: int | None  # None: unknown until every chunk is in (OpenMSIStream records carry no size)
    chunk_count: int
    index: int
    offset: int
    chunk_hash: str
    # A decoded record's payload is a view into the record's value: slicing it out copied every
    # chunk once more (0.56 s of the event loop draining bench.drain_bench's 737 MB).
    payload: bytes | memoryview
    mtime: float | None = None
    hash_name: str = HASH_NAME  # hashlib name of file_hash and chunk_hash

    @property
    def file_id(self) -> FileId:
        return FileId(self.source, self.path)

    def derive(self, **changes: Any) -> FileChunk:
        """A copy with ``changes``: how tests and the fault campaign craft broken records."""
        return dataclasses.replace(self, **changes)

    def header(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "generation": self.generation,
            "file_hash": self.file_hash,
            "file_size": self.file_size,
            "chunk_count": self.chunk_count,
            "index": self.index,
            "offset": self.offset,
            "chunk_hash": self.chunk_hash,
            "length": len(self.payload),
            "mtime": self.mtime,
        }

    def payload_is_intact(self) -> bool:
        return hashlib.new(self.hash_name, self.payload).hexdigest() == self.chunk_hash


_INT_FIELDS = ("file_size", "chunk_count", "index", "offset", "length")
_STR_FIELDS = ("source", "path", "file_hash", "chunk_hash")


def encode_chunk(chunk: FileChunk) -> bytes:
    header = orjson.dumps(chunk.header())
    return b"".join((MAGIC, _HEADER_LENGTH.pack(len(header)), header, chunk.payload))


def decode_chunk(data: bytes, limits: ChunkLimits = DEFAULT_LIMITS) -> FileChunk:
    """Parse and check one chunk message value; raise :class:`ChunkDecodeError` saying what is wrong."""
    if len(data) < _PREFIX_SIZE or not data.startswith(MAGIC):
        raise ChunkDecodeError(f"not a filestream chunk record (starts {bytes(data[:8])!r})")
    (header_length,) = _HEADER_LENGTH.unpack_from(data, len(MAGIC))
    if header_length > MAX_HEADER_BYTES or _PREFIX_SIZE + header_length > len(data):
        raise ChunkDecodeError(f"truncated record: header of {header_length} bytes, message of {len(data)}")
    try:
        header = orjson.loads(data[_PREFIX_SIZE : _PREFIX_SIZE + header_length])
    except orjson.JSONDecodeError as exc:
        raise ChunkDecodeError(f"garbled header: {exc}") from None
    if not isinstance(header, dict):
        raise ChunkDecodeError("garbled header: not a JSON object")
    _check_header_types(header)
    payload = memoryview(data)[_PREFIX_SIZE + header_length :]
    if len(payload) != header["length"]:
        raise ChunkDecodeError(f"truncated payload: {len(payload)} bytes, header says {header['length']}")
    _check_header_ranges(header, limits)
    try:
        FileId(header["source"], header["path"])
    except InvalidIdentity as exc:
        raise ChunkDecodeError(f"bad file identity: {exc}") from None
    return FileChunk(
        source=header["source"],
        path=header["path"],
        generation=header["generation"],
        file_hash=header["file_hash"],
        file_size=header["file_size"],
        chunk_count=header["chunk_count"],
        index=header["index"],
        offset=header["offset"],
        chunk_hash=header["chunk_hash"],
        payload=payload,
        mtime=header.get("mtime"),
    )


def _check_header_types(header: dict[str, Any]) -> None:
    for name in _INT_FIELDS:
        if type(header.get(name)) is not int:
            raise ChunkDecodeError(f"header field {name!r} missing or not an integer")
    for name in _STR_FIELDS:
        if not isinstance(header.get(name), str):
            raise ChunkDecodeError(f"header field {name!r} missing or not a string")
    generation = header.get("generation")
    if generation is not None and type(generation) is not int:
        raise ChunkDecodeError("header field 'generation' is not an integer")
    mtime = header.get("mtime")
    if mtime is not None and not isinstance(mtime, (int, float)):
        raise ChunkDecodeError("header field 'mtime' is not a number")


def _check_header_ranges(header: dict[str, Any], limits: ChunkLimits) -> None:
    if header["generation"] is not None and header["generation"] < 0:
        raise ChunkDecodeError(f"negative generation {header['generation']}")
    try:
        check_layout(
            file_size=header["file_size"],
            chunk_count=header["chunk_count"],
            index=header["index"],
            offset=header["offset"],
            length=header["length"],
            limits=limits,
        )
    except ChunkBoundsError as exc:
        raise ChunkDecodeError(str(exc)) from None
