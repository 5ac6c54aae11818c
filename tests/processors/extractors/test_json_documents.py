"""JSON documents and JSON Lines: types, keys, lengths, record counts, the parse limit, bad input."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import orjson
import pytest

from processors.extractors import limits
from tests.processors.extractors.builders import extract

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
    count = limits.JSON_PARSE_LIMIT // 2 + 1000
    content = b"[" + b"0," * count + b"0]"
    assert len(content) > limits.JSON_PARSE_LIMIT
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
        "parse_limit": limits.JSON_PARSE_LIMIT,
    }
    assert peak < 2 * 1024**2


def test_json_above_the_parse_limit_that_is_not_json_gives_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(limits, "JSON_PARSE_LIMIT", 10)
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
