"""PNG and TIFF (classic and BigTIFF): dimensions, sample layout, pages, bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.processors.extractors.builders import LONG, SHORT, extract, make_bigtiff, make_png, make_tiff

# --- Images ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bit_depth", "color_type", "mode"),
    [(8, 2, "rgb"), (16, 0, "gray"), (4, 3, "palette"), (8, 6, "rgba"), (8, 4, "gray-alpha")],
)
def test_png_dimensions_and_colour(tmp_path: Path, bit_depth: int, color_type: int, mode: str) -> None:
    metadata = extract(tmp_path, "frame.png", make_png(640, 480, bit_depth, color_type))
    assert metadata == {
        "content_type": "image/png",
        "format": "png",
        "width": 640,
        "height": 480,
        "bit_depth": bit_depth,
        "color_type": color_type,
        "color_mode": mode,
        "interlaced": False,
    }


def test_png_is_sniffed_whatever_its_name(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "frame.dat", make_png(3, 7, interlace=1))
    assert metadata["content_type"] == "image/png"
    assert (metadata["width"], metadata["height"], metadata["interlaced"]) == (3, 7, True)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GIF89a" + bytes(40), "not a PNG file: bad signature"),
        (make_png(4, 4)[:20], "truncated PNG: no complete IHDR chunk"),
        (make_png(4, 4)[:17] + b"\xff" + make_png(4, 4)[18:], "invalid PNG: IHDR CRC mismatch"),
        (make_png(0, 4), "invalid PNG: dimensions 0x4"),
        (make_png(4, 4, bit_depth=16, color_type=3), "invalid PNG: colour type 3 with bit depth 16"),
    ],
)
def test_malformed_png_gives_an_error(tmp_path: Path, content: bytes, reason: str) -> None:
    assert extract(tmp_path, "bad.png", content) == {"content_type": "image/png", "format": "png", "error": reason}


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize("dimension_type", [SHORT, LONG])
def test_tiff_dimensions_in_both_byte_orders(tmp_path: Path, order: str, dimension_type: int) -> None:
    width = 300 if dimension_type == SHORT else 70_000
    metadata = extract(tmp_path, "image.tif", make_tiff(order, width, 200, dimension_type))
    assert metadata == {
        "content_type": "image/tiff",
        "format": "tiff",
        "width": width,
        "height": 200,
        "bits_per_sample": [8],
        "samples_per_pixel": 1,
        "compression": 1,
        "pages": 1,
        "byte_order": "little" if order == "II" else "big",
        "bigtiff": False,
    }


@pytest.mark.parametrize("order", ["II", "MM"])
def test_tiff_stack_with_values_stored_outside_the_entries(tmp_path: Path, order: str) -> None:
    content = make_tiff(order, 64, 32, pages=3, bits=(16, 16, 16), extra_entries=((259, SHORT, 1, 5),))
    metadata = extract(tmp_path, "stack.tiff", content)
    assert metadata["bits_per_sample"] == [16, 16, 16]
    assert metadata["samples_per_pixel"] == 3
    assert metadata["compression"] == 5
    assert metadata["pages"] == 3


@pytest.mark.parametrize("order", ["II", "MM"])
def test_bigtiff(tmp_path: Path, order: str) -> None:
    metadata = extract(tmp_path, "huge.btf", make_bigtiff(order, 5_000_000_000, 12))
    assert metadata["format"] == "tiff" and metadata["bigtiff"] is True
    assert (metadata["width"], metadata["height"]) == (5_000_000_000, 12)
    assert metadata["byte_order"] == ("little" if order == "II" else "big")


def test_tiff_page_chain_that_loops_is_counted_once(tmp_path: Path) -> None:
    content = bytearray(make_tiff("II", 8, 8, pages=2))
    (first,) = struct.unpack_from("<I", content, 4)
    struct.pack_into("<I", content, len(content) - 4, first)  # the second IFD points back to the first
    assert extract(tmp_path, "loop.tif", bytes(content))["pages"] == 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"XX*\x00" + bytes(8), "not a TIFF file: bad byte-order mark"),
        (b"II\x2b\x01" + bytes(12), "not a TIFF file: version 299"),
        (
            b"II*\x00" + struct.pack("<I", 10_000),
            "truncated TIFF: 2 bytes at offset 10000 are past the end of the file",
        ),
        (b"II+\x00" + struct.pack("<HHQ", 8, 0, 2**64 - 1), "truncated TIFF"),
        (make_tiff("MM", 8, 8, omit=(257,)), "invalid TIFF: the first IFD has no tag 257"),
        (make_tiff("II", 8, 8)[:-20], "truncated TIFF"),
    ],
)
def test_malformed_tiff_gives_an_error(tmp_path: Path, content: bytes, reason: str) -> None:
    metadata = extract(tmp_path, "bad.tiff", content)
    assert metadata["format"] == "tiff" and metadata["content_type"] == "image/tiff"
    assert metadata["error"].startswith(reason)
