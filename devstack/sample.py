"""A small, seeded sample of what an instrument writes: CSV, JSON, a text header file, a PNG, binaries."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x * 7 + y * 3) % 256 for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def write_sample(root: Path, seed: int = 2026, large_mib: int = 32) -> dict[str, int]:
    """Write the sample tree under ``root``; return {relative path: size}."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {
        "run-001/settings.txt": b"instrument: XRD-7\noperator = demo\nexposure_s: 0.25\n\n1 2 3\n4 5 6\n",
        "run-001/peaks.csv": b"angle,intensity\n"
        + b"".join(f"{10 + i * 0.1:.1f},{rng.randint(0, 5000)}\n".encode() for i in range(2000)),
        "run-001/summary.json": b'{"sample": "demo", "frames": 120, "ok": true}',
        "run-001/preview.png": _png(64, 48),
        "run-002/raw/frame-000.bin": rng.randbytes(3 * 1024**2 + 17),
        "run-002/raw/frame-001.bin": rng.randbytes(5 * 1024**2),
        "run-002/stack.raw": rng.randbytes(large_mib * 1024**2),
        "empty.dat": b"",
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {relative: len(data) for relative, data in files.items()}
