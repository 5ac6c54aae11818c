"""Bounds of content extraction.

They keep both the memory used and the size of the resulting Kafka message small
whatever the input; each is documented in the README schema.  Extractors read them
as ``limits.NAME`` at call time, so one set of values governs every format.
"""

from __future__ import annotations

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


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last of them an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
