"""Every format the extractors know, and the extensions and magic bytes that name them.

Compressed files, archives and the other binary formats listed here without an
extractor are recognised (format and MIME type) but not looked into.  Detection
reads these tables as ``registry.NAME`` at call time, so a format added to them
later is seen.
"""

from __future__ import annotations

from processors.extractors.delimited import extract_csv, extract_tsv
from processors.extractors.images import PNG_SIGNATURE, extract_png, extract_tiff
from processors.extractors.json_documents import extract_json, extract_json_lines
from processors.extractors.source import Format
from processors.extractors.text import extract_text

FORMATS: dict[str, Format] = {
    entry.name: entry
    for entry in (
        Format("json", "application/json", extract_json),
        Format("jsonl", "application/x-ndjson", extract_json_lines),
        Format("csv", "text/csv", extract_csv),
        Format("tsv", "text/tab-separated-values", extract_tsv),
        Format("text", "text/plain", extract_text, generic=True),
        Format("text-header", "text/plain"),  # only reached through "text"
        Format("png", "image/png", extract_png),
        Format("tiff", "image/tiff", extract_tiff),
        Format("gzip", "application/gzip"),
        Format("bzip2", "application/x-bzip2"),
        Format("xz", "application/x-xz"),
        Format("zstd", "application/zstd"),
        Format("zip", "application/zip"),
        Format("pdf", "application/pdf"),
        Format("jpeg", "image/jpeg"),
        Format("gif", "image/gif"),
        Format("hdf5", "application/x-hdf5"),
        Format("binary", "application/octet-stream", generic=True),
        Format("empty", "application/octet-stream", generic=True),
    )
}
"""Every format by name."""

EXTENSIONS: dict[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
}
"""Lower-case extension -> format, trusted over the content.  Any other file,
``.txt`` included, is sniffed: text is then told apart by :func:`extract_text`."""

MAGIC: tuple[tuple[bytes, str], ...] = (
    (PNG_SIGNATURE, "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x1f\x8b", "gzip"),
    *((b"BZh" + bytes([level]), "bzip2") for level in b"123456789"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
    (b"%PDF-", "pdf"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
)
"""Leading bytes -> format, for files whose extension is not in :data:`EXTENSIONS`."""
