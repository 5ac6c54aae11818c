"""Content metadata of one completed file, for the built-in metadata reproducer.

:func:`extract_content_metadata` looks at a file on local disk, possibly many
gigabytes, and returns a small JSON-serialisable dict (orjson-compatible: only
str/int/float/bool/None/list/dict) describing its content: ``content_type`` (a
MIME type), ``format``, and fields particular to that format such as the keys
of a JSON document, the columns and row count of a CSV table, the header block
of a text instrument file, or the dimensions of a PNG/TIFF image.

Memory stays bounded whatever the size of the file: it is read through one
fixed-size head, bounded ``readline`` calls, or a few seeks.  Only JSON
documents up to :data:`limits.JSON_PARSE_LIMIT` bytes are parsed whole.

Bad content never raises: a malformed file gives ``{"content_type": ...,
"format": ..., "error": "reason"}``, so the caller can still publish a message.
Only I/O errors (:class:`OSError`) propagate.

One module per format family: :mod:`.json_documents` (JSON, JSON Lines),
:mod:`.delimited` (CSV, TSV), :mod:`.text` (header blocks, tables in text, plain
text), :mod:`.images` (PNG, TIFF); :mod:`.detection` chooses the format,
:mod:`.registry` lists them, :mod:`.limits` bounds them all.

Adding a format: write an extractor ``(Source) -> dict`` that raises
:class:`MalformedContent` on bad content, register a :class:`Format` in
:data:`FORMATS`, and map its extensions in :data:`EXTENSIONS` and/or its magic
bytes in :data:`MAGIC` (all three in :mod:`.registry`).
"""

from __future__ import annotations

import csv
import os
import struct
from pathlib import Path
from typing import Any

from processors.extractors import limits, registry
from processors.extractors.detection import content_type, detect
from processors.extractors.registry import EXTENSIONS, FORMATS, MAGIC
from processors.extractors.source import Format, MalformedContent, Source

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "MAGIC",
    "Format",
    "MalformedContent",
    "Source",
    "extract_content_metadata",
]


def extract_content_metadata(path: Path, name: str) -> dict[str, Any]:
    """Metadata of the content of the completed file ``path``, whose relative path is ``name``.

    The format is chosen by the extension of ``name``, else by sniffing the
    first bytes.  Raises only :class:`OSError`; bad content gives an ``error``
    field instead.
    """
    with open(path, "rb") as file:
        head = file.read(limits.HEAD_BYTES)
        size = os.fstat(file.fileno()).st_size
    source = Source(Path(path), name, size, head)
    detected, by_extension = detect(source)
    try:
        fields = detected.extract(source) if detected.extract else {}
    except (ValueError, csv.Error, struct.error, RecursionError) as exc:
        # MalformedContent carries a reason written for users; anything else
        # escaping a parser is still bad content, named by its exception type.
        reason = str(exc) if isinstance(exc, MalformedContent) else f"{type(exc).__name__}: {exc}"
        final = registry.FORMATS[getattr(exc, "format_name", None) or detected.name]
        return {
            "content_type": content_type(name, final, by_extension),
            "format": final.name,
            "error": limits.clip(reason, limits.MAX_VALUE_CHARS),
        }
    final = registry.FORMATS[fields.pop("format", detected.name)]
    return {"content_type": content_type(name, final, by_extension), "format": final.name, **fields}
