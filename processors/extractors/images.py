"""Images: the dimensions and sample layout of PNG and TIFF (classic and BigTIFF) files.

Only the headers are read: PNG's IHDR from the head, TIFF's IFDs by a few seeks.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import processors.extractors.limits as limits
from processors.extractors.source import MalformedContent, Source

# --- PNG --------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> (name, allowed bit depths), from the PNG specification's IHDR table.
_PNG_COLOR_TYPES = {
    0: ("gray", (1, 2, 4, 8, 16)),
    2: ("rgb", (8, 16)),
    3: ("palette", (1, 2, 4, 8)),
    4: ("gray-alpha", (8, 16)),
    6: ("rgba", (8, 16)),
}


def extract_png(source: Source) -> dict[str, Any]:
    head = source.head
    if not head.startswith(PNG_SIGNATURE):
        raise MalformedContent("not a PNG file: bad signature")
    if len(head) < 33:
        raise MalformedContent("truncated PNG: no complete IHDR chunk")
    length, chunk_type = struct.unpack(">I4s", head[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise MalformedContent("invalid PNG: the first chunk is not a 13-byte IHDR")
    (crc,) = struct.unpack(">I", head[29:33])
    if zlib.crc32(head[12:29]) != crc:
        raise MalformedContent("invalid PNG: IHDR CRC mismatch")
    width, height, bit_depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise MalformedContent(f"invalid PNG: dimensions {width}x{height}")
    color = _PNG_COLOR_TYPES.get(color_type)
    if color is None or bit_depth not in color[1]:
        raise MalformedContent(f"invalid PNG: colour type {color_type} with bit depth {bit_depth}")
    return {
        "width": width,
        "height": height,
        "bit_depth": bit_depth,
        "color_type": color_type,
        "color_mode": color[0],
        "interlaced": interlace == 1,
    }


# --- TIFF -------------------------------------------------------------------

# Unsigned integer field types: BYTE, SHORT, LONG, LONG8 (BigTIFF).
_TIFF_INTEGER_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_BITS, _TIFF_COMPRESSION, _TIFF_SAMPLES = 256, 257, 258, 259, 277

_TiffEntry = tuple[int, int, bytes]  # field type, value count, value-or-offset field


@dataclass(frozen=True)
class _TiffLayout:
    """Byte order and field widths of classic TIFF or BigTIFF."""

    order: str  # struct byte-order prefix
    big: bool

    @property
    def count(self) -> str:
        return "Q" if self.big else "H"

    @property
    def offset(self) -> str:
        return "Q" if self.big else "I"

    @property
    def entry_size(self) -> int:
        return 20 if self.big else 12

    def size(self, code: str) -> int:
        return struct.calcsize(self.order + code)


def extract_tiff(source: Source) -> dict[str, Any]:
    head = source.head
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        raise MalformedContent("not a TIFF file: bad byte-order mark")
    (version,) = struct.unpack(order + "H", head[2:4])
    if version == 42:
        layout = _TiffLayout(order, big=False)
        (first,) = struct.unpack(order + "I", head[4:8])
    elif version == 43:
        layout = _TiffLayout(order, big=True)
        if len(head) < 16:
            raise MalformedContent("truncated BigTIFF header")
        offset_size, reserved, first = struct.unpack(order + "HHQ", head[4:16])
        if offset_size != 8 or reserved != 0:
            raise MalformedContent(f"invalid BigTIFF header: offset size {offset_size}")
    else:
        raise MalformedContent(f"not a TIFF file: version {version}")
    with open(source.path, "rb") as file:
        entries, next_ifd = _tiff_ifd(file, source.size, layout, first)

        def integers(tag: int, default: int | None = None) -> list[int]:
            if tag not in entries:
                if default is None:
                    raise MalformedContent(f"invalid TIFF: the first IFD has no tag {tag}")
                return [default]
            values = _tiff_integers(file, source.size, layout, entries[tag])
            if not values:
                raise MalformedContent(f"invalid TIFF: tag {tag} has no value")
            return values

        fields: dict[str, Any] = {
            "width": integers(_TIFF_WIDTH)[0],
            "height": integers(_TIFF_HEIGHT)[0],
            # Defaults from the TIFF 6.0 specification.
            "bits_per_sample": integers(_TIFF_BITS, 1),
            "samples_per_pixel": integers(_TIFF_SAMPLES, 1)[0],
            "compression": integers(_TIFF_COMPRESSION, 1)[0],
            "pages": _tiff_pages(file, source.size, layout, first, next_ifd),
        }
    return {**fields, "byte_order": "little" if order == "<" else "big", "bigtiff": layout.big}


def _tiff_ifd(file: BinaryIO, size: int, layout: _TiffLayout, offset: int) -> tuple[dict[int, _TiffEntry], int]:
    """The entries of the IFD at ``offset`` by tag, and the offset of the next IFD (0 if none)."""
    count_size, offset_size = layout.size(layout.count), layout.size(layout.offset)
    (count,) = struct.unpack(layout.order + layout.count, _read_at(file, size, offset, count_size))
    if count > limits.TIFF_MAX_ENTRIES:
        raise MalformedContent(f"invalid TIFF: IFD at {offset} claims {count} entries")
    block = _read_at(file, size, offset + count_size, count * layout.entry_size + offset_size)
    head_format = layout.order + "HH" + layout.offset
    head_size = struct.calcsize(head_format)
    entries: dict[int, _TiffEntry] = {}
    for start in range(0, count * layout.entry_size, layout.entry_size):
        tag, field_type, values = struct.unpack(head_format, block[start : start + head_size])
        entries.setdefault(tag, (field_type, values, block[start + head_size : start + layout.entry_size]))
    (next_ifd,) = struct.unpack(layout.order + layout.offset, block[-offset_size:])
    return entries, next_ifd


def _tiff_integers(file: BinaryIO, size: int, layout: _TiffLayout, entry: _TiffEntry, limit: int = 16) -> list[int]:
    """Up to ``limit`` values of an unsigned integer field, inline or at its offset."""
    field_type, count, field = entry
    if field_type not in _TIFF_INTEGER_TYPES:
        raise MalformedContent(f"invalid TIFF: field type {field_type} where an integer was expected")
    code, width = _TIFF_INTEGER_TYPES[field_type]
    wanted = min(count, limit)
    if count * width <= len(field):  # small enough to sit in the entry itself
        data = field[: wanted * width]
    else:
        (offset,) = struct.unpack(layout.order + layout.offset, field)
        data = _read_at(file, size, offset, wanted * width)
    return list(struct.unpack(f"{layout.order}{wanted}{code}", data))


def _tiff_pages(file: BinaryIO, size: int, layout: _TiffLayout, first: int, next_ifd: int) -> int:
    """IFDs in the chain, up to TIFF_MAX_PAGES.

    A broken link after the first IFD ends the count rather than failing the
    file: the first image, which the other fields describe, is intact.
    """
    pages, seen = 1, {first}
    while next_ifd and next_ifd not in seen and pages < limits.TIFF_MAX_PAGES:
        seen.add(next_ifd)
        try:
            _, next_ifd = _tiff_ifd(file, size, layout, next_ifd)
        except (MalformedContent, struct.error):
            break
        pages += 1
    return pages


def _read_at(file: BinaryIO, size: int, offset: int, length: int) -> bytes:
    # Offsets come from the file itself: check them before seeking (a 64-bit
    # BigTIFF offset can exceed what seek() accepts).
    if offset + length > size:
        raise MalformedContent(f"truncated TIFF: {length} bytes at offset {offset} are past the end of the file")
    file.seek(offset)
    data = file.read(length)
    if len(data) < length:
        raise MalformedContent(f"truncated TIFF: {length} bytes at offset {offset} are past the end of the file")
    return data
