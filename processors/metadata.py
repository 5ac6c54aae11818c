"""The built-in metadata reproducer: one JSON message per completed file on the metadata topic.

Registered by ``agents/processors.py`` as ``metadata`` when ``FILESTREAM_METADATA_ENABLED``
is true (the default).  The message schema is documented in the README; ``content`` is what
:func:`processors.extractors.extract_content_metadata` returns.
"""

from __future__ import annotations

import threading
from typing import Any

from processors.completed_file import CompletedFile
from processors.extractors import extract_content_metadata

METADATA_REPRODUCER = "metadata"


def metadata_message(file: CompletedFile, lock: threading.Lock) -> dict[str, Any]:
    content = extract_content_metadata(file.path, file.relative_path)
    return {
        "source": file.source,
        "path": file.relative_path,
        "generation": file.generation,
        "size": file.size,
        "sha256": file.sha256,
        "first_chunk_at": file.first_chunk_at,
        "finished_at": file.finished_at,
        "content_type": content["content_type"],
        "content": content,
    }
