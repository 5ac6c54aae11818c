"""Which decoder reads a chunk topic's messages: ``FILESTREAM_CHUNK_CODEC``.

``auto`` tells the two formats apart by their first byte, which cannot be ambiguous:
a filestream record starts with ``b"FSC1"`` (0x46), an OpenMSIStream record with the
msgpack header of an array of 9 or 10 elements (0x99 or 0x9a).
"""

from __future__ import annotations

from models.bounds import ChunkLimits
from models.chunk import DEFAULT_LIMITS, MAGIC, ChunkDecodeError, FileChunk, decode_chunk
from models.openmsistream import ARRAY_MARKERS, DEFAULT_SOURCE, decode_openmsistream_chunk

FILESTREAM = "filestream"
OPENMSISTREAM = "openmsistream"
AUTO = "auto"


def decode_any_chunk(
    value: bytes,
    codec: str = AUTO,
    openmsistream_source: str = DEFAULT_SOURCE,
    limits: ChunkLimits = DEFAULT_LIMITS,
) -> FileChunk:
    """Decode with ``codec``'s decoder, or with the one ``auto`` detects; :class:`ChunkDecodeError` if none fits."""
    if codec == AUTO:
        codec = detect_codec(value)
    if codec == FILESTREAM:
        return decode_chunk(value, limits)
    if codec == OPENMSISTREAM:
        return decode_openmsistream_chunk(value, openmsistream_source, limits)
    raise ValueError(f"unknown chunk codec {codec!r}")


def detect_codec(value: bytes) -> str:
    if value and value.startswith(MAGIC):
        return FILESTREAM
    if value and value[0] in ARRAY_MARKERS:
        return OPENMSISTREAM
    raise ChunkDecodeError(
        f"neither a filestream chunk record nor an OpenMSIStream one (starts {bytes((value or b'')[:8])!r})"
    )
