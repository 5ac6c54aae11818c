"""Chunk records for tests that need to craft what an uploader would send (or a broken one would)."""

from __future__ import annotations

from chaos.records import file_chunks
from models.chunk import FileChunk, encode_chunk


def make_chunks(
    data: bytes,
    *,
    source: str = "lab",
    path: str = "run/data.bin",
    chunk_size: int = 4,
    generation: int | None = 1,
) -> list[FileChunk]:
    return file_chunks(data, source=source, path=path, chunk_size=chunk_size, generation=generation)


def as_messages(chunks: list[FileChunk]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs as an uploader puts them on the chunk topic."""
    return [(chunk.file_id.key, encode_chunk(chunk)) for chunk in chunks]


def file_messages(files: dict[str, bytes], *, chunk_size: int, generation: int | None = 1) -> list[tuple[bytes, bytes]]:
    return as_messages(
        [
            c
            for name, data in files.items()
            for c in make_chunks(data, path=name, chunk_size=chunk_size, generation=generation)
        ]
    )
