"""Which format a file is: by its extension, else by sniffing its first bytes; and its MIME type."""

from __future__ import annotations

import mimetypes
import re
from pathlib import PurePosixPath

import orjson

import processors.extractors.registry as registry
from processors.extractors.decoding import strip_bom, text_codec
from processors.extractors.source import Format, Source

# A private table: mimetypes.guess_type() also reads /etc/mime.types, which
# differs between machines; a fresh MimeTypes has only Python's own table.
_MIME_TYPES = mimetypes.MimeTypes()

# An opening brace or bracket followed by something JSON can continue with, so
# that an INI "[section]" line or a "{placeholder}" is not taken for JSON.
_JSON_START = re.compile(rb'(?:\xef\xbb\xbf)?\s*(?:\{\s*["}]|\[\s*(?:[\[\]{"\-0-9]|true|false|null))')


def detect(source: Source) -> tuple[Format, bool]:
    """The format to extract with, and whether the extension (rather than the content) decided it."""
    by_extension = registry.EXTENSIONS.get(PurePosixPath(source.name).suffix.lower())
    if by_extension:
        return registry.FORMATS[by_extension], True
    return registry.FORMATS[_sniff(source)], False


def _sniff(source: Source) -> str:
    head = source.head
    if not head:
        return "empty"
    for magic, name in registry.MAGIC:
        if head.startswith(magic):
            return name
    if _JSON_START.match(head):
        return "jsonl" if _looks_like_json_lines(source) else "json"
    return "text" if text_codec(head) else "binary"


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
            orjson.loads(strip_bom(line))
    except orjson.JSONDecodeError:
        return False
    return True


def content_type(name: str, detected: Format, by_extension: bool) -> str:
    """The MIME type from the name when it is trustworthy, else the detected format's own.

    The name is trusted when it chose the format, or when the content was only
    recognised as generic text/binary.  A compression suffix (``.csv.gz``)
    makes mimetypes name the inner type, which is not what the bytes are.
    """
    guessed, encoding = _MIME_TYPES.guess_type(name, strict=False)
    if guessed and not encoding and guessed != "application/octet-stream" and (by_extension or detected.generic):
        return guessed
    return detected.content_type
