"""Content metadata extraction: every format, generated here, plus bounds and bad input."""

from __future__ import annotations

import codecs
import gzip
import random
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from processors import extractors
from processors.extractors import EXTENSIONS, FORMATS, MAGIC, Format, Source, extract_content_metadata


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


# --- JSON -----------------------------------------------------------------------


def test_json_object_reports_keys_in_document_order(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "run/meta.json", '{"sample": "S1", "temperature": 21.5, "tags": [1, 2], "z": {}}')
    assert metadata == {
        "content_type": "application/json",
        "format": "json",
        "json_type": "object",
        "truncated": False,
        "keys": ["sample", "temperature", "tags", "z"],
        "key_count": 4,
    }


def test_json_object_keys_are_capped_but_counted(tmp_path: Path) -> None:
    document = {f"k{i:03}": i for i in range(150)}
    metadata = extract(tmp_path, "wide.json", orjson.dumps(document))
    assert metadata["keys"] == [f"k{i:03}" for i in range(100)]
    assert metadata["key_count"] == 150


def test_json_array_reports_its_length(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "list.json", '[1, {"a": 2}, [3], null]')
    assert metadata == {
        "content_type": "application/json",
        "format": "json",
        "json_type": "array",
        "truncated": False,
        "length": 4,
    }


@pytest.mark.parametrize(
    ("text", "json_type"),
    [('"text"', "string"), ("-1.5e3", "number"), ("true", "boolean"), ("null", "null")],
)
def test_json_scalar_types(tmp_path: Path, text: str, json_type: str) -> None:
    metadata = extract(tmp_path, "scalar.json", text)
    assert metadata["json_type"] == json_type
    assert "keys" not in metadata and "length" not in metadata


def test_json_with_a_byte_order_mark_is_parsed(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "bom.json", codecs.BOM_UTF8 + b'{"a": 1}')
    assert metadata["keys"] == ["a"]


@pytest.mark.parametrize("text", ['{"a": 1,', "{'a': 1}", "", "[1, 2] trailing", '"\\ud800"'])
def test_malformed_json_gives_an_error_not_an_exception(tmp_path: Path, text: str) -> None:
    metadata = extract(tmp_path, "bad.json", text)
    assert metadata["content_type"] == "application/json"
    assert metadata["format"] == "json"
    assert metadata["error"].startswith("invalid JSON")
    assert set(metadata) == {"content_type", "format", "error"}


def test_json_above_the_parse_limit_is_typed_but_not_parsed(tmp_path: Path) -> None:
    count = extractors.JSON_PARSE_LIMIT // 2 + 1000
    content = b"[" + b"0," * count + b"0]"
    assert len(content) > extractors.JSON_PARSE_LIMIT
    tracemalloc.start()
    try:
        metadata = extract(tmp_path, "big.json", content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert metadata == {
        "content_type": "application/json",
        "format": "json",
        "json_type": "array",
        "truncated": True,
        "parse_limit": extractors.JSON_PARSE_LIMIT,
    }
    assert peak < 2 * 1024**2


def test_json_above_the_parse_limit_that_is_not_json_gives_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extractors, "JSON_PARSE_LIMIT", 10)
    metadata = extract(tmp_path, "big.json", "<html>not json at all</html>")
    assert metadata["format"] == "json"
    assert "error" in metadata


def test_json_lines_counts_records_and_keys_of_the_first(tmp_path: Path) -> None:
    lines = ['{"id": 1, "value": 2.5}', "", '{"id": 2, "value": 3.5, "extra": true}', "[1, 2]", '"text"']
    metadata = extract(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    assert metadata == {
        "content_type": "application/x-ndjson",
        "format": "jsonl",
        "record_count": 4,
        "keys": ["id", "value"],
        "key_count": 2,
    }


def test_ndjson_extension_and_a_first_record_that_is_not_an_object(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "values.ndjson", "[1]\n[2]\n[3]")
    assert metadata["format"] == "jsonl"
    assert metadata["record_count"] == 3
    assert metadata["keys"] == [] and metadata["key_count"] == 0


def test_malformed_json_lines_names_the_line(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "events.jsonl", '{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n')
    assert metadata["format"] == "jsonl"
    assert metadata["error"].startswith("invalid JSON on line 3")


def test_json_and_json_lines_are_sniffed_without_an_extension(tmp_path: Path) -> None:
    assert extract(tmp_path, "document", '{\n  "a": 1,\n  "b": 2\n}\n')["format"] == "json"
    lines = extract(tmp_path, "records", '{"a": 1}\n{"a": 2}\n')
    assert lines["format"] == "jsonl" and lines["record_count"] == 2
    assert lines["content_type"] == "application/x-ndjson"


# --- CSV / TSV ------------------------------------------------------------------


def test_csv_with_quoted_newlines_counts_rows_not_lines(tmp_path: Path) -> None:
    content = 'id,comment,value\r\n1,"first\r\nline two",3.5\r\n2,"has ""quotes"", and a comma",4\r\n\r\n3,plain,5\r\n'
    metadata = extract(tmp_path, "table.csv", content)
    assert metadata == {
        "content_type": "text/csv",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "columns": ["id", "comment", "value"],
        "column_count": 3,
        "row_count": 3,
    }


def test_csv_delimiter_is_sniffed(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "european.csv", "time;value\n0;1,5\n1;2,5\n2;3,5\n")
    assert metadata["delimiter"] == ";"
    assert metadata["columns"] == ["time", "value"]
    assert metadata["row_count"] == 3


def test_csv_of_one_column_falls_back_to_a_comma(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "single.csv", "value\n1\n2\n")
    assert metadata["delimiter"] == ","
    assert metadata["columns"] == ["value"]
    assert metadata["row_count"] == 2


def test_empty_csv_has_no_columns_and_no_rows(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "empty.csv", "")
    assert metadata["columns"] == [] and metadata["column_count"] == 0 and metadata["row_count"] == 0


def test_csv_header_only(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "header.csv", "a,b,c\n")
    assert metadata["columns"] == ["a", "b", "c"] and metadata["row_count"] == 0


def test_tsv_reports_columns_and_rows(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "data.tsv", "wavelength\tintensity\n400\t0.1\n401\t0.2\n")
    assert metadata == {
        "content_type": "text/tab-separated-values",
        "format": "tsv",
        "encoding": "utf-8",
        "delimiter": "\t",
        "columns": ["wavelength", "intensity"],
        "column_count": 2,
        "row_count": 2,
    }
    assert extract(tmp_path, "data.tab", "a\tb\n1\t2\n")["format"] == "tsv"


def test_csv_with_an_unterminated_quote_gives_an_error(tmp_path: Path) -> None:
    content = 'a,b\n1,"never closed\n' + "x" * 200_000 + "\n"
    metadata = extract(tmp_path, "broken.csv", content)
    assert metadata["format"] == "csv"
    assert metadata["error"].startswith("CSV parse error on line")


def test_csv_that_is_binary_gives_an_error(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "image.csv", make_png(2, 2))
    assert metadata == {"content_type": "text/csv", "format": "csv", "error": "binary content where text was expected"}


def test_a_line_longer_than_the_limit_is_refused_without_reading_it_whole(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extractors, "MAX_LINE", 1024**2)
    path = tmp_path / "no-newlines.csv"
    with path.open("wb") as file:
        for _ in range(50):
            file.write(b"x" * 1024**2)
    tracemalloc.start()
    try:
        metadata = extract_content_metadata(path, path.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert metadata["error"] == f"line 1 is longer than {1024**2} characters"
    assert peak < 10 * 1024**2


def test_large_csv_is_counted_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    row = b'123456,"a quoted field\nwith a newline",0.123456789,some more text here\n'
    rows_per_block = 1000
    block = row * rows_per_block
    blocks = 50 * 1024**2 // len(block) + 1
    with path.open("wb") as file:
        file.write(b"id,note,value,text\n")
        for _ in range(blocks):
            file.write(block)
    size = path.stat().st_size
    assert size > 50 * 1024**2
    tracemalloc.start()
    try:
        metadata = extract_content_metadata(path, "large.csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert metadata["row_count"] == blocks * rows_per_block
    assert metadata["columns"] == ["id", "note", "value", "text"]
    assert peak < 2 * 1024**2, f"peak {peak} bytes for a {size}-byte file"


# --- Text: header blocks, sniffed tables, plain text -------------------------------


def test_text_header_with_colons_and_equals_signs(tmp_path: Path) -> None:
    content = (
        "# XRD export v2.1\n"
        "# Instrument: D8 Advance\n"
        "Sample ID = 007\n"
        "Scan rate [deg/min]: 0.5\n"
        "Steps = 4000\n"
        "Temperature (°C): -12.5\n"
        "Started: 2024-05-01 12:30:00\n"
        "Operator = 'J. Doe'\n"
        'Label = "42"\n'
        "Huge = 123456789012345678901234\n"
        "Exponent: 1e-3\n"
        "Empty:\n"
        "Steps = 9\n"
        "\n"
        "angle,intensity\n"
        "10.0,5\n"
    )
    metadata = extract(tmp_path, "scan.txt", content)
    assert metadata == {
        "content_type": "text/plain",
        "format": "text-header",
        "encoding": "utf-8",
        "header": {
            "Instrument": "D8 Advance",
            "Sample ID": "007",
            "Scan rate [deg/min]": 0.5,
            "Steps": 4000,
            "Temperature (°C)": -12.5,
            "Started": "2024-05-01 12:30:00",
            "Operator": "J. Doe",
            "Label": "42",
            "Huge": "123456789012345678901234",
            "Exponent": 0.001,
            "Empty": "",
        },
        "header_lines": 13,
        "header_truncated": False,
    }


def test_text_header_stops_at_the_first_data_line(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "spectrum.dat", "; Spectrometer = X1\n; gain=2\n400 0.1\n401 0.2\nlate: 1\n")
    assert metadata["format"] == "text-header"
    assert metadata["header"] == {"Spectrometer": "X1", "gain": 2}
    assert metadata["header_lines"] == 2


def test_text_header_is_capped(tmp_path: Path) -> None:
    content = "".join(f"key{i} = {i}\n" for i in range(150))
    metadata = extract(tmp_path, "many.txt", content)
    assert len(metadata["header"]) == 100
    assert metadata["header"]["key99"] == 99
    assert metadata["header_lines"] == 150
    assert metadata["header_truncated"] is True


def test_text_header_in_latin_1(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "old.txt", "Temperatur (°C): 20\nProbe: µ-Kristall\n".encode("latin-1"))
    assert metadata["encoding"] == "latin-1"
    assert metadata["header"] == {"Temperatur (°C)": 20, "Probe": "µ-Kristall"}


def test_text_header_in_utf_16(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "windows.txt", "Instrument: PX\r\nChannels: 4\r\n".encode("utf-16"))
    assert metadata["encoding"] == "utf-16"
    assert metadata["header"] == {"Instrument": "PX", "Channels": 4}


def test_a_text_file_that_is_a_table_is_read_as_one(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "export.txt", "a,b,c\n1,2,3\n4,5,6\n")
    assert metadata["format"] == "csv"
    assert metadata["content_type"] == "text/csv"
    assert metadata["columns"] == ["a", "b", "c"] and metadata["row_count"] == 2
    tabs = extract(tmp_path, "export.dat", "x\ty\n1\t2\n")
    assert tabs["format"] == "tsv" and tabs["content_type"] == "text/tab-separated-values"


def test_plain_text(tmp_path: Path) -> None:
    prose = "This is a note about the run.\nNothing here is a header, nor a table.\n"
    assert extract(tmp_path, "notes.txt", prose) == {
        "content_type": "text/plain",
        "format": "text",
        "encoding": "utf-8",
    }
    assert extract(tmp_path, "notes", prose)["content_type"] == "text/plain"
    assert extract(tmp_path, "page.xml", "<?xml version='1.0'?>\n<a/>\n")["content_type"] == "text/xml"


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


# --- Everything else --------------------------------------------------------------


def test_unknown_binary(tmp_path: Path) -> None:
    blob = bytes(random.Random(6).randrange(256) for _ in range(4096)) + b"\x00"
    assert extract(tmp_path, "capture.raw", blob) == {"content_type": "application/octet-stream", "format": "binary"}
    assert extract(tmp_path, "capture", blob)["format"] == "binary"
    assert extract(tmp_path, "capture.jpg", blob)["content_type"] == "image/jpeg"  # the name is all there is


@pytest.mark.parametrize(
    ("name", "content", "expected_format", "content_type"),
    [
        ("table.csv.gz", gzip.compress(b"a,b\n1,2\n"), "gzip", "application/gzip"),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(100), "jpeg", "image/jpeg"),
        ("scan.pdf", b"%PDF-1.7\n" + bytes(100), "pdf", "application/pdf"),
        ("data.h5", b"\x89HDF\r\n\x1a\n" + bytes(100), "hdf5", "application/x-hdf5"),
        ("image.bin", make_tiff("MM", 2, 2), "tiff", "image/tiff"),
        ("nothing", b"", "empty", "application/octet-stream"),
    ],
)
def test_formats_are_sniffed_from_magic_bytes(
    tmp_path: Path, name: str, content: bytes, expected_format: str, content_type: str
) -> None:
    metadata = extract(tmp_path, name, content)
    assert (metadata["format"], metadata["content_type"]) == (expected_format, content_type)


def test_an_ini_section_is_not_taken_for_json(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "settings", "[General]\nname = x\n")
    assert metadata["format"] == "text"


def _garbage() -> list[bytes]:
    rng = random.Random(1234)
    samples = [bytes(rng.randrange(256) for _ in range(size)) for size in (1, 7, 33, 500, 70_000)]
    return samples + [
        b"\x00" * 10,
        b"{",
        b"[",
        b'"',
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"\n\n\n",
        b"a" * 100_000,
        make_png(4, 4)[:30],
        make_tiff("II", 4, 4)[:14],
        b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 65535),
        b"MM\x00+" + struct.pack(">HHQ", 8, 0, 16) + struct.pack(">Q", 2**63),
    ]


@pytest.mark.parametrize("suffix", sorted(EXTENSIONS) + [".txt", ".bin", ""])
def test_bad_content_never_raises(tmp_path: Path, suffix: str) -> None:
    for index, content in enumerate(_garbage()):
        metadata = extract(tmp_path, f"garbage{index}{suffix}", content)
        assert isinstance(metadata["content_type"], str) and "/" in metadata["content_type"]
        assert metadata["format"] in FORMATS
        assert "error" not in metadata or isinstance(metadata["error"], str)


def test_io_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        extract_content_metadata(tmp_path / "missing.csv", "missing.csv")


def test_a_format_is_added_with_a_registry_entry(tmp_path: Path, monkeypatch) -> None:
    def extract_fits(source: Source) -> dict[str, Any]:
        return {"header_cards": len(source.head) // 80}

    monkeypatch.setitem(FORMATS, "fits", Format("fits", "application/fits", extract_fits))
    monkeypatch.setitem(EXTENSIONS, ".fits", "fits")
    monkeypatch.setattr(extractors, "MAGIC", MAGIC + ((b"SIMPLE  =", "fits"),))
    card = b"SIMPLE  =                    T".ljust(80)
    assert extract(tmp_path, "sky.fits", card * 36) == {
        "content_type": "application/fits",
        "format": "fits",
        "header_cards": 36,
    }
    assert extract(tmp_path, "sky.dat", card * 2)["format"] == "fits"
