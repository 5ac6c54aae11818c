"""Text without a more specific extension: an instrument header block, a table, or plain text."""

from __future__ import annotations

import math
import re
from typing import Any

import processors.extractors.limits as limits
from processors.extractors.decoding import encoding_name, require_text, sniff_sample
from processors.extractors.delimited import table, table_delimiter
from processors.extractors.limits import clip
from processors.extractors.source import MalformedContent, Source

# Comment markers of the usual instrument and data formats, before a header entry.
_COMMENT = re.compile(r"\s*(?:#+|//+|;+|%+|!+|\*+)")
# A key starts with a letter or underscore and holds the characters instrument
# keys use ("Temperature (°C)", "Scan rate [mV/s]"), but no comma, so a CSV
# header line is not a header entry.
_KEY_VALUE = re.compile(r"\s*(?P<key>[^\W\d][\w .()\[\]/%°#+-]{0,127}?)\s*[:=](?P<value>.*)")
_INT = re.compile(r"[+-]?(?:0|[1-9]\d{0,19})")  # no leading zeros: "007" is an identifier
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)")


def extract_text(source: Source) -> dict[str, Any]:
    """A text file without a more specific extension: a header block, a table, or plain text."""
    codec = require_text(source)
    header = _header_block(source, codec)
    if header is not None:
        return {"format": "text-header", "encoding": encoding_name(codec), **header}
    delimiter = table_delimiter(sniff_sample(source, codec))
    if delimiter is not None:
        name = "tsv" if delimiter == "\t" else "csv"
        try:
            return {"format": name, **table(source, codec, delimiter)}
        except MalformedContent as exc:
            exc.format_name = name
            raise
    return {"format": "text", "encoding": encoding_name(codec)}


def _header_block(source: Source, codec: str) -> dict[str, Any] | None:
    """The leading ``key: value`` / ``key = value`` lines, or None if there are none.

    Comment lines without an entry (a title, a separator) belong to the block;
    a blank line or any other line ends it.  Of repeated keys the first is kept.
    """
    header: dict[str, Any] = {}
    lines = entries = 0
    with open(source.path, encoding=codec, errors="replace") as text:
        while lines < limits.HEADER_MAX_LINES:
            line = text.readline(limits.HEADER_LINE_CHARS)
            if not line.strip() or (len(line) == limits.HEADER_LINE_CHARS and not line.endswith("\n")):
                break
            comment = _COMMENT.match(line)
            entry = _KEY_VALUE.fullmatch(line[comment.end() if comment else 0 :].rstrip("\n"))
            if entry:
                entries += 1
                key = clip(entry["key"], limits.MAX_NAME_CHARS)
                if len(header) < limits.MAX_NAMES:
                    header.setdefault(key, _header_value(entry["value"]))
            elif not comment:
                break
            lines += 1
    if not entries:
        return None
    truncated = lines == limits.HEADER_MAX_LINES or (len(header) == limits.MAX_NAMES and entries > limits.MAX_NAMES)
    return {"header": header, "header_lines": lines, "header_truncated": truncated}


def _header_value(raw: str) -> str | int | float:
    """The value as a string, or a number if it is exactly one that JSON and orjson can carry."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return clip(value[1:-1], limits.MAX_VALUE_CHARS)  # quoted: meant as a string
    if _INT.fullmatch(value):
        number = int(value)
        if -(2**63) <= number < 2**64:  # orjson's integer range
            return number
    elif len(value) <= 64 and _FLOAT.fullmatch(value):
        real = float(value)
        if math.isfinite(real):
            return real
    return clip(value, limits.MAX_VALUE_CHARS)
