"""Delimited tables (CSV, TSV): columns and row count, streamed."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

import processors.extractors.limits as limits
from processors.extractors.decoding import bounded_lines, encoding_name, require_text, sniff_sample
from processors.extractors.limits import clip
from processors.extractors.source import MalformedContent, Source

_DELIMITERS = ",;\t|"


def extract_csv(source: Source) -> dict[str, Any]:
    codec = require_text(source)
    delimiter = _sniff_delimiter(sniff_sample(source, codec)) or ","
    return table(source, codec, delimiter)


def extract_tsv(source: Source) -> dict[str, Any]:
    return table(source, require_text(source), "\t")


def table(source: Source, codec: str, delimiter: str) -> dict[str, Any]:
    """Header and data row count of a delimited table, streamed; blank lines are not rows.

    csv.reader over physical lines, so a quoted field may span lines; its own
    field size limit (128 KiB) bounds a runaway quote.
    """
    with open(source.path, encoding=codec, errors="replace", newline="") as text:
        # The dialect's quoting rules stay Excel's: Sniffer's guesses of them
        # are less reliable than its guess of the delimiter.
        reader = csv.reader(bounded_lines(text), delimiter=delimiter)
        try:
            header = next((row for row in reader if row), [])
            rows = sum(1 for row in reader if row)
        except csv.Error as exc:
            raise MalformedContent(f"CSV parse error on line {reader.line_num}: {exc}") from exc
    return {
        "encoding": encoding_name(codec),
        "delimiter": delimiter,
        "columns": [clip(column, limits.MAX_NAME_CHARS) for column in header[: limits.MAX_COLUMNS]],
        "column_count": len(header),
        "row_count": rows,
    }


def _sniff_delimiter(sample: str) -> str | None:
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return None


def table_delimiter(sample: str) -> str | None:
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
