"""CSV and TSV tables: columns, rows, delimiters, quoted newlines, bounded lines and memory, bad input."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from processors.extractors import extract_content_metadata, limits
from tests.processors.extractors.builders import extract, make_png

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
    monkeypatch.setattr(limits, "MAX_LINE", 1024**2)
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
