"""Builders of real image files, and the extraction every test goes through."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import orjson

from processors.extractors import extract_content_metadata


def extract(tmp_path: Path, name: str, content: bytes | str) -> dict[str, Any]:
    """Write ``content`` as ``name`` and extract; the result must survive orjson unchanged."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    metadata = extract_content_metadata(path, name)
    assert orjson.loads(orjson.dumps(metadata)) == metadata
    return metadata


# --- Builders of real image files ---------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width: int, height: int, bit_depth: int = 8, color_type: int = 2, interlace: int = 0) -> bytes:
    """A complete, decodable PNG: IHDR, (PLTE), one IDAT of zero pixels, IEND."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row_bytes = (width * channels * bit_depth + 7) // 8
    pixels = b"".join(b"\x00" + bytes(row_bytes) for _ in range(height))  # filter type 0 per row
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))]
    if color_type == 3:
        chunks.append(png_chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff"))
    chunks += [png_chunk(b"IDAT", zlib.compress(pixels)), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


SHORT, LONG, LONG8 = 3, 4, 16


def make_tiff(
    order: str,
    width: int,
    height: int,
    dimension_type: int = SHORT,
    pages: int = 1,
    bits: tuple[int, ...] = (8,),
    extra_entries: tuple[tuple[int, int, int, int], ...] = (),
    omit: tuple[int, ...] = (),
) -> bytes:
    """A classic TIFF of ``pages`` IFDs (no strips: only the tags the extractor reads).

    BitsPerSample with more than two values lives outside its entry, as in real RGB files.
    """
    prefix = "<" if order == "II" else ">"
    out = bytearray(order.encode() + struct.pack(prefix + "HI", 42, 8))
    next_ifd_field = 4  # where the offset of the next IFD goes: the header's for the first page
    for _ in range(pages):
        bits_offset = 0
        if len(bits) > 2:
            bits_offset = len(out)
            out += struct.pack(f"{prefix}{len(bits)}H", *bits)
            if len(out) % 2:
                out += b"\x00"
        entries = [(256, dimension_type, 1, width), (257, dimension_type, 1, height)]
        entries.append((258, SHORT, len(bits), bits_offset) if len(bits) > 2 else (258, SHORT, 1, bits[0]))
        entries.append((277, SHORT, 1, len(bits)))
        entries += list(extra_entries)
        entries = sorted(e for e in entries if e[0] not in omit)
        ifd_offset = len(out)
        struct.pack_into(prefix + "I", out, next_ifd_field, ifd_offset)
        out += struct.pack(prefix + "H", len(entries))
        for tag, kind, count, value in entries:
            if kind == SHORT and count == 1:
                field = struct.pack(prefix + "HH", value, 0)  # a SHORT is left-justified in its field
            else:
                field = struct.pack(prefix + "I", value)
            out += struct.pack(prefix + "HHI", tag, kind, count) + field
        next_ifd_field = len(out)
        out += struct.pack(prefix + "I", 0)
    return bytes(out)


def make_bigtiff(order: str, width: int, height: int) -> bytes:
    prefix = "<" if order == "II" else ">"
    header = order.encode() + struct.pack(prefix + "HHHQ", 43, 8, 0, 16)
    entries = [(256, LONG8, 1, width), (257, LONG, 1, height)]
    ifd = struct.pack(prefix + "Q", len(entries))
    for tag, kind, count, value in entries:
        field = struct.pack(prefix + ("Q" if kind == LONG8 else "I"), value).ljust(8, b"\x00")
        ifd += struct.pack(prefix + "HHQ", tag, kind, count) + field
    return header + ifd + struct.pack(prefix + "Q", 0)
