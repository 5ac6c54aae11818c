"""The files a scenario sends: seeded random contents, written out for the upload command, dealt into batches."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

KiB, MiB = 1024, 1024**2
CHUNK = 64 * KiB  # crafted records: small chunks make many records per file


def random_files(rng: random.Random, prefix: str, count: int, smallest: int, largest: int) -> dict[str, bytes]:
    return {f"{prefix}-{number:03d}.bin": rng.randbytes(rng.randint(smallest, largest)) for number in range(count)}


def write_sources(directory: Path, files: Mapping[str, bytes]) -> None:
    for path, data in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)


def split_into(items: list, parts: int) -> list[list]:
    return [items[index::parts] for index in range(parts)]
