"""Crash safety: changelog recovery into empty data dirs, SIGKILL at random moments, failover between workers."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from devstack.testing import as_messages, make_chunks, poll, produce_chunks, produce_paced, wait_for_files

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024


def files_total(worker, status: str) -> int:
    try:
        return worker.get_json(f"/filestream/files/?status={status}&limit=1")["total"]
    except OSError:
        return -1


def test_worker_killed_at_random_moments_still_delivers_every_file(start_worker, pipeline):
    rng = random.Random(11)
    files = {f"kill/{i:03d}.dat": rng.randbytes(rng.randint(1, 12) * CHUNK - rng.randint(0, 500)) for i in range(60)}
    chunks = [c for name, data in files.items() for c in make_chunks(data, path=name, chunk_size=CHUNK)]
    rng.shuffle(chunks)
    batches = [as_messages(chunks[i : i + 40]) for i in range(0, len(chunks), 40)]
    output = Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab"

    worker = start_worker("run0")
    worker.wait_ready()
    producer = produce_paced(pipeline, batches, pause=0.5)
    for round_number in range(1, 4):
        time.sleep(rng.uniform(0.5, 2.5))
        worker.kill()
        # Alternate: restart on the same data dir, then on an empty one (changelog only).
        name = "run0" if round_number % 2 == 0 else f"run{round_number}"
        worker = start_worker(name)
        worker.wait_ready(timeout=120)
    producer.join()
    wait_for_files(output, files, stall_timeout=90, workers=[worker])
    leftovers = [p for p in output.rglob("*.part")]
    assert leftovers == []


def test_survivor_finishes_the_in_flight_files_of_a_killed_worker(start_worker, pipeline):
    rng = random.Random(5)
    files = {f"failover/{i:02d}.bin": rng.randbytes(4 * CHUNK + i) for i in range(40)}
    chunked = {name: make_chunks(data, path=name, chunk_size=CHUNK) for name, data in files.items()}
    doomed = start_worker("doomed")
    survivor = start_worker("survivor")
    doomed.wait_ready(timeout=120)
    survivor.wait_ready(timeout=120)
    poll(
        lambda: (
            sorted(doomed.health()["assigned_partitions"] + survivor.health()["assigned_partitions"]) == [0, 1, 2, 3]
        ),
        90,
        "the partitions to split between both workers",
    )
    doomed_partitions = doomed.health()["assigned_partitions"]
    assert doomed_partitions and survivor.health()["assigned_partitions"]

    asyncio.run(produce_chunks(pipeline, as_messages([c for chunks in chunked.values() for c in chunks[:3]])))
    poll(lambda: files_total(doomed, "assembling") + files_total(survivor, "assembling") == 40, 60, "40 partial files")
    in_flight_on_doomed = files_total(doomed, "assembling")
    assert in_flight_on_doomed > 0
    doomed.kill()

    asyncio.run(produce_chunks(pipeline, as_messages([c for chunks in chunked.values() for c in chunks[3:]])))
    wait_for_files(Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab", files, stall_timeout=120, workers=[survivor])
    assert survivor.health()["assigned_partitions"] == [0, 1, 2, 3]
