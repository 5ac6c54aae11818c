"""Reassembly through the real broker and real worker processes."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from devstack.testing import as_messages, make_chunks, produce_chunks, wait_for_files
from models.chunk import encode_chunk

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024


def test_mixed_files_arrive_byte_identical_whatever_the_order(start_worker, pipeline):
    rng = random.Random(7)
    files = {
        f"run{i % 3}/file{i}.dat": rng.randbytes(rng.choice([0, 1, 1000, CHUNK, 3 * CHUNK + 17])) for i in range(30)
    }
    chunks = [c for name, data in files.items() for c in make_chunks(data, path=name, chunk_size=CHUNK)]
    rng.shuffle(chunks)
    duplicates = rng.sample(chunks, 10)
    worker = start_worker()
    worker.wait_ready()
    asyncio.run(produce_chunks(pipeline, as_messages(chunks + duplicates)))
    output = Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab"
    wait_for_files(output, files, workers=[worker])
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()) == sorted(files)


def test_corrupt_chunk_is_rejected_and_a_later_good_copy_completes(start_worker, pipeline):
    data = os.urandom(3 * CHUNK)
    chunks = make_chunks(data, path="bad/then-good.bin", chunk_size=CHUNK)
    corrupt = chunks[1].derive(payload=b"X" * CHUNK)
    garbage = [(b"lab/garbage", b"not a chunk record at all"), (b"lab/trunc", encode_chunk(chunks[0])[:100])]
    worker = start_worker()
    worker.wait_ready()
    asyncio.run(produce_chunks(pipeline, garbage + as_messages([chunks[0], corrupt, chunks[2]])))
    output = Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab"
    asyncio.run(produce_chunks(pipeline, as_messages([chunks[1]])))
    wait_for_files(output, {"bad/then-good.bin": data}, workers=[worker])
    log = worker.log_tail(400)
    assert "payload does not match its hash" in log
    assert "not a filestream chunk record" in log
    assert worker.process.alive()


@pytest.mark.parametrize("new_size", [6 * CHUNK, 3 * CHUNK, CHUNK // 2], ids=["bigger", "same-size", "smaller"])
def test_reuploaded_changed_file_delivers_the_newer_generation(start_worker, pipeline, new_size):
    old = os.urandom(3 * CHUNK)
    new = os.urandom(new_size)
    old_chunks = make_chunks(old, path="edit.bin", chunk_size=CHUNK, generation=10)
    new_chunks = make_chunks(new, path="edit.bin", chunk_size=CHUNK, generation=11)
    worker = start_worker()
    worker.wait_ready()
    # A partial old generation, then the whole new one, then the old one's stragglers.
    asyncio.run(produce_chunks(pipeline, as_messages(old_chunks[:2] + new_chunks + old_chunks[2:])))
    output = Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab"
    wait_for_files(output, {"edit.bin": new}, workers=[worker])
    asyncio.run(produce_chunks(pipeline, as_messages(old_chunks)))
    # The stale generation must never replace the newer file: send a marker file after it and wait for that.
    marker = make_chunks(b"marker", path="marker.txt", chunk_size=CHUNK)
    asyncio.run(produce_chunks(pipeline, as_messages(marker)))
    wait_for_files(output, {"marker.txt": b"marker"}, workers=[worker])
    assert (output / "edit.bin").read_bytes() == new


HOSTILE_PATHS = ["../escape.txt", "/etc/passwd-copy", "a/../../up.txt", "C:/windows.txt", "nul\x00byte", "x" * 300]


def test_hostile_names_are_rejected_and_nothing_lands_outside(start_worker, pipeline, tmp_path):
    worker = start_worker()
    worker.wait_ready()
    messages = []
    for path in HOSTILE_PATHS:
        for chunk in make_chunks(b"evil", path="placeholder", chunk_size=CHUNK):
            hostile = chunk.derive(path=path)
            messages.append((f"lab/{path}".encode(), encode_chunk(hostile)))
    good = make_chunks(b"good", path="fine.txt", chunk_size=CHUNK)
    asyncio.run(produce_chunks(pipeline, messages + as_messages(good)))
    output = Path(pipeline["FILESTREAM_OUTPUT_DIR"])
    wait_for_files(output / "lab", {"fine.txt": b"good"}, workers=[worker])
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == b"evil"]
    assert written == []
    assert (Path("/etc/passwd-copy").exists() or Path("/up.txt").exists()) is False
    assert worker.log_tail(2000).count("bad file identity") == len(HOSTILE_PATHS)
