"""Reading a file's content as text: which codec, its head as text, and lines within bounds."""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterator
from typing import TextIO

import processors.extractors.limits as limits
from processors.extractors.source import MalformedContent, Source

_BINARY_BYTES = bytes(sorted(set(range(32)) - set(b"\t\n\r\f\b\x1b"))) + b"\x7f"


def text_codec(head: bytes) -> str | None:
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


def encoding_name(codec: str) -> str:
    return "utf-8" if codec == "utf-8-sig" else codec


def require_text(source: Source) -> str:
    codec = text_codec(source.head)
    if codec is None:
        raise MalformedContent("binary content where text was expected")
    return codec


def head_text(source: Source, codec: str) -> str:
    whole = len(source.head) >= source.size
    return codecs.getincrementaldecoder(codec)(errors="replace").decode(source.head, final=whole)


def sniff_sample(source: Source, codec: str) -> str:
    """Up to SNIFF_CHARS of text, ending at a line end unless that is the whole file."""
    text = head_text(source, codec)
    sample = text[: limits.SNIFF_CHARS]
    if (len(sample) < len(text) or len(source.head) < source.size) and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    return sample


def bounded_lines(text: TextIO) -> Iterator[str]:
    """The lines of ``text``, refusing one longer than MAX_LINE rather than reading it whole."""
    limit = limits.MAX_LINE
    for number in itertools.count(1):
        line = text.readline(limit)
        if not line:
            return
        if len(line) == limit and line[-1] not in "\r\n":
            raise MalformedContent(f"line {number} is longer than {limit} characters")
        yield line


def strip_bom(data: bytes) -> bytes:
    # orjson refuses a BOM, which RFC 8259 lets parsers ignore.
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
