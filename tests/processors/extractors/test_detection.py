"""Choosing the format without a known extension: magic bytes, JSON sniffing, the MIME type from the name."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from tests.processors.extractors.builders import extract, make_tiff


def test_json_and_json_lines_are_sniffed_without_an_extension(tmp_path: Path) -> None:
    assert extract(tmp_path, "document", '{\n  "a": 1,\n  "b": 2\n}\n')["format"] == "json"
    lines = extract(tmp_path, "records", '{"a": 1}\n{"a": 2}\n')
    assert lines["format"] == "jsonl" and lines["record_count"] == 2
    assert lines["content_type"] == "application/x-ndjson"


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
