"""Content metadata of one completed file, for the built-in metadata reproducer.

:func:`extract_content_metadata` looks at a file on local disk, possibly many
gigabytes, and returns a small JSON-serialisable dict (orjson-compatible: only
str/int/float/bool/None/list/dict) describing its content: ``content_type`` (a
MIME type), ``format``, and fields particular to that format such as the keys
of a JSON document, the columns and row count of a CSV table, the header block
of a text instrument file, or the dimensions of a PNG/TIFF image.

Memory stays bounded whatever the size of the file: it is read through one
fixed-size head, bounded ``readline`` calls, or a few seeks.  Only JSON
documents up to :data:`JSON_PARSE_LIMIT` bytes are parsed whole.

Bad content never raises: a malformed file gives ``{"content_type": ...,
"format": ..., "error": "reason"}``, so the caller can still publish a message.
Only I/O errors (:class:`OSError`) propagate.

Adding a format: write an extractor ``(Source) -> dict`` that raises
:class:`MalformedContent` on bad content, register a :class:`Format` in
:data:`FORMATS`, and map its extensions in :data:`EXTENSIONS` and/or its magic
bytes in :data:`MAGIC`.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import mimetypes
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TextIO

import orjson

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "MAGIC",
    "Format",
    "MalformedContent",
    "Source",
    "extract_content_metadata",
]

# Bounds.  They keep both the memory used and the size of the resulting Kafka
# message small whatever the input; each is documented in the README schema.
HEAD_BYTES = 64 * 1024
"""Bytes read once from the start of every file, for sniffing and small headers."""
SNIFF_CHARS = 16 * 1024
"""Characters of text given to :class:`csv.Sniffer` (it is quadratic-ish in its input)."""
JSON_PARSE_LIMIT = 16 * 1024 * 1024
"""Largest JSON document parsed.  Python objects take 5-20x the JSON text, so
a 16 MiB document can already cost a few hundred MB for a moment."""
MAX_LINE = 8 * 1024 * 1024
"""Longest physical line (characters, or bytes for JSON Lines) of a table or
JSON Lines file; a longer one is reported as malformed instead of being read
into memory (a binary file with a text extension may have no newline at all)."""
MAX_NAMES = 100
"""JSON keys and header entries kept."""
MAX_COLUMNS = 1000
"""CSV/TSV column names kept."""
MAX_NAME_CHARS = 256
"""Longest key or column name kept; longer ones are clipped and end with an ellipsis."""
MAX_VALUE_CHARS = 1024
"""Longest header value or error reason kept."""
HEADER_MAX_LINES = 1000
"""Lines of a text header block scanned."""
HEADER_LINE_CHARS = 64 * 1024
"""A longer line is not a header line."""
TIFF_MAX_ENTRIES = 65535
"""Most entries accepted in a TIFF IFD (the classic format's own limit)."""
TIFF_MAX_PAGES = 10_000
"""Most TIFF pages (IFDs) counted."""


class MalformedContent(ValueError):
    """The content does not match its format; the message is the reason given to users.

    ``format_name`` names the format the content was being read as, when an
    extractor had already refined it (a ``.txt`` file that turned out to be a
    CSV table).
    """

    def __init__(self, reason: str, format_name: str | None = None) -> None:
        super().__init__(reason)
        self.format_name = format_name


@dataclass(frozen=True)
class Source:
    """What an extractor gets: the file, its relative name, its size and its first bytes."""

    path: Path
    name: str
    size: int
    head: bytes


Extractor = Callable[[Source], dict[str, Any]]
"""Returns the format-specific fields; may return ``"format"`` to refine the detected format."""


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    extract: Extractor | None = None
    generic: bool = False
    """A catch-all for content not recognised more precisely, where a MIME type
    guessed from the file name says more than the format does (``.xml`` is "text")."""


def extract_content_metadata(path: Path, name: str) -> dict[str, Any]:
    """Metadata of the content of the completed file ``path``, whose relative path is ``name``.

    The format is chosen by the extension of ``name``, else by sniffing the
    first bytes.  Raises only :class:`OSError`; bad content gives an ``error``
    field instead.
    """
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
        size = os.fstat(file.fileno()).st_size
    source = Source(Path(path), name, size, head)
    detected, by_extension = _detect(source)
    try:
        fields = detected.extract(source) if detected.extract else {}
    except (ValueError, csv.Error, struct.error, RecursionError) as exc:
        # MalformedContent carries a reason written for users; anything else
        # escaping a parser is still bad content, named by its exception type.
        reason = str(exc) if isinstance(exc, MalformedContent) else f"{type(exc).__name__}: {exc}"
        final = FORMATS[getattr(exc, "format_name", None) or detected.name]
        return {
            "content_type": _content_type(name, final, by_extension),
            "format": final.name,
            "error": _clip(reason, MAX_VALUE_CHARS),
        }
    final = FORMATS[fields.pop("format", detected.name)]
    return {"content_type": _content_type(name, final, by_extension), "format": final.name, **fields}


# --- Detection --------------------------------------------------------------

# A private table: mimetypes.guess_type() also reads /etc/mime.types, which
# differs between machines; a fresh MimeTypes has only Python's own table.
_MIME_TYPES = mimetypes.MimeTypes()


def _detect(source: Source) -> tuple[Format, bool]:
    """The format to extract with, and whether the extension (rather than the content) decided it."""
    by_extension = EXTENSIONS.get(PurePosixPath(source.name).suffix.lower())
    if by_extension:
        return FORMATS[by_extension], True
    return FORMATS[_sniff(source)], False


def _sniff(source: Source) -> str:
    head = source.head
    if not head:
        return "empty"
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if _JSON_START.match(head):
        return "jsonl" if _looks_like_json_lines(source) else "json"
    return "text" if _text_codec(head) else "binary"


# An opening brace or bracket followed by something JSON can continue with, so
# that an INI "[section]" line or a "{placeholder}" is not taken for JSON.
_JSON_START = re.compile(rb'(?:\xef\xbb\xbf)?\s*(?:\{\s*["}]|\[\s*(?:[\[\]{"\-0-9]|true|false|null))')


def _looks_like_json_lines(source: Source) -> bool:
    """Whether the first two non-blank lines of the head are each a complete JSON value.

    A pretty-printed document's first line (``{``) is not, and a one-line
    document has no second line.
    """
    pieces = source.head.split(b"\n")
    if len(source.head) < source.size:
        pieces.pop()  # cut by the head, so possibly incomplete
    lines = [piece for piece in pieces if piece.strip()][:2]
    if len(lines) < 2:
        return False
    try:
        for line in lines:
            orjson.loads(_strip_bom(line))
    except orjson.JSONDecodeError:
        return False
    return True


def _content_type(name: str, detected: Format, by_extension: bool) -> str:
    """The MIME type from the name when it is trustworthy, else the detected format's own.

    The name is trusted when it chose the format, or when the content was only
    recognised as generic text/binary.  A compression suffix (``.csv.gz``)
    makes mimetypes name the inner type, which is not what the bytes are.
    """
    guessed, encoding = _MIME_TYPES.guess_type(name, strict=False)
    if guessed and not encoding and guessed != "application/octet-stream" and (by_extension or detected.generic):
        return guessed
    return detected.content_type


# --- Text helpers -----------------------------------------------------------

_BINARY_BYTES = bytes(sorted(set(range(32)) - set(b"\t\n\r\f\b\x1b"))) + b"\x7f"


def _text_codec(head: bytes) -> str | None:
    """The codec to read the file as text with, or None if its head looks binary.

    UTF-8 first (``utf-8-sig`` drops a BOM); else Latin-1, which decodes any
    byte, for the 8-bit text many instruments still write (``°``, ``µ``).
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        return None
    try:
        # final=False: the head may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    control = len(head) - len(head.translate(None, _BINARY_BYTES))
    return "latin-1" if control * 100 <= len(head) else None


def _encoding_name(codec: str) -> str:
    return "utf-8" if codec == "utf-8-sig" else codec


def _require_text(source: Source) -> str:
    codec = _text_codec(source.head)
    if codec is None:
        raise MalformedContent("binary content where text was expected")
    return codec


def _head_text(source: Source, codec: str) -> str:
    whole = len(source.head) >= source.size
    return codecs.getincrementaldecoder(codec)(errors="replace").decode(source.head, final=whole)


def _bounded_lines(text: TextIO) -> Iterator[str]:
    """The lines of ``text``, refusing one longer than MAX_LINE rather than reading it whole."""
    limit = MAX_LINE
    for number in itertools.count(1):
        line = text.readline(limit)
        if not line:
            return
        if len(line) == limit and line[-1] not in "\r\n":
            raise MalformedContent(f"line {number} is longer than {limit} characters")
        yield line


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strip_bom(data: bytes) -> bytes:
    # orjson refuses a BOM, which RFC 8259 lets parsers ignore.
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data


# --- JSON -------------------------------------------------------------------

_JSON_TYPES_BY_FIRST_BYTE = {
    ord("{"): "object",
    ord("["): "array",
    ord('"'): "string",
    ord("t"): "boolean",
    ord("f"): "boolean",
    ord("n"): "null",
    **{byte: "number" for byte in b"-0123456789"},
}


def _extract_json(source: Source) -> dict[str, Any]:
    if source.size > JSON_PARSE_LIMIT:
        return _unparsed_json(source)
    with open(source.path, "rb") as file:
        data = file.read(JSON_PARSE_LIMIT + 1)
    if len(data) > JSON_PARSE_LIMIT:  # grew since it was measured
        return _unparsed_json(source)
    try:
        document = orjson.loads(_strip_bom(data))
    except orjson.JSONDecodeError as exc:
        raise MalformedContent(f"invalid JSON: {exc}") from exc
    fields: dict[str, Any] = {"json_type": _json_type(document), "truncated": False}
    if isinstance(document, dict):
        fields.update(_json_keys(document))
    elif isinstance(document, list):
        fields["length"] = len(document)
    return fields


def _unparsed_json(source: Source) -> dict[str, Any]:
    """Too large to parse: the type is still known from the first significant byte."""
    start = _strip_bom(source.head).lstrip()
    json_type = _JSON_TYPES_BY_FIRST_BYTE.get(start[0]) if start else None
    if json_type is None:
        raise MalformedContent("invalid JSON: the document does not start with a JSON value")
    return {"json_type": json_type, "truncated": True, "parse_limit": JSON_PARSE_LIMIT}


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):  # before int: bool is an int
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _json_keys(document: dict[str, Any]) -> dict[str, Any]:
    keys = [_clip(key, MAX_NAME_CHARS) for key in itertools.islice(document, MAX_NAMES)]
    return {"keys": keys, "key_count": len(document)}


def _extract_json_lines(source: Source) -> dict[str, Any]:
    records = 0
    first: Any = None
    with open(source.path, "rb") as file:
        for number in itertools.count(1):
            line = file.readline(MAX_LINE)
            if not line:
                break
            if len(line) == MAX_LINE and not line.endswith(b"\n"):
                raise MalformedContent(f"line {number} is longer than {MAX_LINE} bytes")
            if not line.strip():
                continue
            try:
                record = orjson.loads(_strip_bom(line) if number == 1 else line)
            except orjson.JSONDecodeError as exc:
                raise MalformedContent(f"invalid JSON on line {number}: {exc}") from exc
            if records == 0:
                first = record
            records += 1
    fields: dict[str, Any] = {"record_count": records, "keys": [], "key_count": 0}
    if isinstance(first, dict):
        fields.update(_json_keys(first))
    return fields


# --- CSV / TSV --------------------------------------------------------------

_DELIMITERS = ",;\t|"


def _extract_csv(source: Source) -> dict[str, Any]:
    codec = _require_text(source)
    delimiter = _sniff_delimiter(_sniff_sample(source, codec)) or ","
    return _table(source, codec, delimiter)


def _extract_tsv(source: Source) -> dict[str, Any]:
    return _table(source, _require_text(source), "\t")


def _table(source: Source, codec: str, delimiter: str) -> dict[str, Any]:
    """Header and data row count of a delimited table, streamed; blank lines are not rows.

    csv.reader over physical lines, so a quoted field may span lines; its own
    field size limit (128 KiB) bounds a runaway quote.
    """
    with open(source.path, encoding=codec, errors="replace", newline="") as text:
        # The dialect's quoting rules stay Excel's: Sniffer's guesses of them
        # are less reliable than its guess of the delimiter.
        reader = csv.reader(_bounded_lines(text), delimiter=delimiter)
        try:
            header = next((row for row in reader if row), [])
            rows = sum(1 for row in reader if row)
        except csv.Error as exc:
            raise MalformedContent(f"CSV parse error on line {reader.line_num}: {exc}") from exc
    return {
        "encoding": _encoding_name(codec),
        "delimiter": delimiter,
        "columns": [_clip(column, MAX_NAME_CHARS) for column in header[:MAX_COLUMNS]],
        "column_count": len(header),
        "row_count": rows,
    }


def _sniff_sample(source: Source, codec: str) -> str:
    """Up to SNIFF_CHARS of text, ending at a line end unless that is the whole file."""
    text = _head_text(source, codec)
    sample = text[:SNIFF_CHARS]
    if (len(sample) < len(text) or len(source.head) < source.size) and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    return sample


def _sniff_delimiter(sample: str) -> str | None:
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return None


def _table_delimiter(sample: str) -> str | None:
    """The delimiter of text that is a table: Sniffer's guess, if it gives at
    least two rows of the same two or more columns (Sniffer alone finds a
    "delimiter" in most prose)."""
    delimiter = _sniff_delimiter(sample)
    if delimiter is None:
        return None
    try:
        rows = [row for row in itertools.islice(csv.reader(io.StringIO(sample), delimiter=delimiter), 50) if row]
    except csv.Error:
        return None
    if sample and not sample.endswith("\n") and len(rows) > 2:
        rows.pop()  # possibly cut by the sample
    if len(rows) < 2 or len(rows[0]) < 2 or any(len(row) != len(rows[0]) for row in rows):
        return None
    return delimiter


# --- Text: instrument header blocks, tables, anything else -------------------

# Comment markers of the usual instrument and data formats, before a header entry.
_COMMENT = re.compile(r"\s*(?:#+|//+|;+|%+|!+|\*+)")
# A key starts with a letter or underscore and holds the characters instrument
# keys use ("Temperature (°C)", "Scan rate [mV/s]"), but no comma, so a CSV
# header line is not a header entry.
_KEY_VALUE = re.compile(r"\s*(?P<key>[^\W\d][\w .()\[\]/%°#+-]{0,127}?)\s*[:=](?P<value>.*)")
_INT = re.compile(r"[+-]?(?:0|[1-9]\d{0,19})")  # no leading zeros: "007" is an identifier
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)")


def _extract_text(source: Source) -> dict[str, Any]:
    """A text file without a more specific extension: a header block, a table, or plain text."""
    codec = _require_text(source)
    header = _header_block(source, codec)
    if header is not None:
        return {"format": "text-header", "encoding": _encoding_name(codec), **header}
    delimiter = _table_delimiter(_sniff_sample(source, codec))
    if delimiter is not None:
        name = "tsv" if delimiter == "\t" else "csv"
        try:
            return {"format": name, **_table(source, codec, delimiter)}
        except MalformedContent as exc:
            exc.format_name = name
            raise
    return {"format": "text", "encoding": _encoding_name(codec)}


def _header_block(source: Source, codec: str) -> dict[str, Any] | None:
    """The leading ``key: value`` / ``key = value`` lines, or None if there are none.

    Comment lines without an entry (a title, a separator) belong to the block;
    a blank line or any other line ends it.  Of repeated keys the first is kept.
    """
    header: dict[str, Any] = {}
    lines = entries = 0
    with open(source.path, encoding=codec, errors="replace") as text:
        while lines < HEADER_MAX_LINES:
            line = text.readline(HEADER_LINE_CHARS)
            if not line.strip() or (len(line) == HEADER_LINE_CHARS and not line.endswith("\n")):
                break
            comment = _COMMENT.match(line)
            entry = _KEY_VALUE.fullmatch(line[comment.end() if comment else 0 :].rstrip("\n"))
            if entry:
                entries += 1
                key = _clip(entry["key"], MAX_NAME_CHARS)
                if len(header) < MAX_NAMES:
                    header.setdefault(key, _header_value(entry["value"]))
            elif not comment:
                break
            lines += 1
    if not entries:
        return None
    truncated = lines == HEADER_MAX_LINES or (len(header) == MAX_NAMES and entries > MAX_NAMES)
    return {"header": header, "header_lines": lines, "header_truncated": truncated}


def _header_value(raw: str) -> str | int | float:
    """The value as a string, or a number if it is exactly one that JSON and orjson can carry."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return _clip(value[1:-1], MAX_VALUE_CHARS)  # quoted: meant as a string
    if _INT.fullmatch(value):
        number = int(value)
        if -(2**63) <= number < 2**64:  # orjson's integer range
            return number
    elif len(value) <= 64 and _FLOAT.fullmatch(value):
        real = float(value)
        if math.isfinite(real):
            return real
    return _clip(value, MAX_VALUE_CHARS)


# --- PNG --------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> (name, allowed bit depths), from the PNG specification's IHDR table.
_PNG_COLOR_TYPES = {
    0: ("gray", (1, 2, 4, 8, 16)),
    2: ("rgb", (8, 16)),
    3: ("palette", (1, 2, 4, 8)),
    4: ("gray-alpha", (8, 16)),
    6: ("rgba", (8, 16)),
}


def _extract_png(source: Source) -> dict[str, Any]:
    head = source.head
    if not head.startswith(_PNG_SIGNATURE):
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


def _extract_tiff(source: Source) -> dict[str, Any]:
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
    if count > TIFF_MAX_ENTRIES:
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
    while next_ifd and next_ifd not in seen and pages < TIFF_MAX_PAGES:
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


# --- Registry -----------------------------------------------------------------

FORMATS: dict[str, Format] = {
    entry.name: entry
    for entry in (
        Format("json", "application/json", _extract_json),
        Format("jsonl", "application/x-ndjson", _extract_json_lines),
        Format("csv", "text/csv", _extract_csv),
        Format("tsv", "text/tab-separated-values", _extract_tsv),
        Format("text", "text/plain", _extract_text, generic=True),
        Format("text-header", "text/plain"),  # only reached through "text"
        Format("png", "image/png", _extract_png),
        Format("tiff", "image/tiff", _extract_tiff),
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
``.txt`` included, is sniffed: text is then told apart by :func:`_extract_text`."""

MAGIC: tuple[tuple[bytes, str], ...] = (
    (_PNG_SIGNATURE, "png"),
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
