"""The entry point: bad content of any format never raises, I/O errors do, a format is added by registering it."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest

from processors.extractors import EXTENSIONS, FORMATS, MAGIC, Format, Source, extract_content_metadata, registry
from tests.processors.extractors.builders import extract, make_png, make_tiff


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
    monkeypatch.setattr(registry, "MAGIC", MAGIC + ((b"SIMPLE  =", "fits"),))
    card = b"SIMPLE  =                    T".ljust(80)
    assert extract(tmp_path, "sky.fits", card * 36) == {
        "content_type": "application/fits",
        "format": "fits",
        "header_cards": 36,
    }
    assert extract(tmp_path, "sky.dat", card * 2)["format"] == "fits"
