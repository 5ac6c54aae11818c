"""JSON documents (type, keys or length) and JSON Lines (record count, keys of the first record)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

import processors.extractors.limits as limits
from processors.extractors.decoding import strip_bom
from processors.extractors.limits import clip
from processors.extractors.source import MalformedContent, Source

_JSON_TYPES_BY_FIRST_BYTE = {
    ord("{"): "object",
    ord("["): "array",
    ord('"'): "string",
    ord("t"): "boolean",
    ord("f"): "boolean",
    ord("n"): "null",
    **{byte: "number" for byte in b"-0123456789"},
}


def extract_json(source: Source) -> dict[str, Any]:
    if source.size > limits.JSON_PARSE_LIMIT:
        return _unparsed_json(source)
    with open(source.path, "rb") as file:
        data = file.read(limits.JSON_PARSE_LIMIT + 1)
    if len(data) > limits.JSON_PARSE_LIMIT:  # grew since it was measured
        return _unparsed_json(source)
    try:
        document = orjson.loads(strip_bom(data))
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
    start = strip_bom(source.head).lstrip()
    json_type = _JSON_TYPES_BY_FIRST_BYTE.get(start[0]) if start else None
    if json_type is None:
        raise MalformedContent("invalid JSON: the document does not start with a JSON value")
    return {"json_type": json_type, "truncated": True, "parse_limit": limits.JSON_PARSE_LIMIT}


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
    keys = [clip(key, limits.MAX_NAME_CHARS) for key in itertools.islice(document, limits.MAX_NAMES)]
    return {"keys": keys, "key_count": len(document)}


def extract_json_lines(source: Source) -> dict[str, Any]:
    records = 0
    first: Any = None
    max_line = limits.MAX_LINE
    with open(source.path, "rb") as file:
        for number in itertools.count(1):
            line = file.readline(max_line)
            if not line:
                break
            if len(line) == max_line and not line.endswith(b"\n"):
                raise MalformedContent(f"line {number} is longer than {max_line} bytes")
            if not line.strip():
                continue
            try:
                record = orjson.loads(strip_bom(line) if number == 1 else line)
            except orjson.JSONDecodeError as exc:
                raise MalformedContent(f"invalid JSON on line {number}: {exc}") from exc
            if records == 0:
                first = record
            records += 1
    fields: dict[str, Any] = {"record_count": records, "keys": [], "key_count": 0}
    if isinstance(first, dict):
        fields.update(_json_keys(first))
    return fields
