"""A worker on an empty data dir restores every table entry from the changelogs, on both brokers."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from devstack.stack import DevStack
from devstack.testing import as_messages, make_chunks, pipeline_env, poll, produce_chunks, wait_for_files
from tables.assembler import PROGRESS_WRITE_INTERVAL
from tests.e2e.test_crash_recovery import files_total

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(broker_stack: DevStack, tmp_path: Path) -> dict[str, str]:
    return pipeline_env(broker_stack, tmp_path)


def still_digest(worker) -> dict:
    """The tables' digest once two readings, further apart than the assembler's progress writes, agree.

    A partial file's latest chunk mark reaches the table up to two seconds after the chunk
    (write-behind, tables/assembler.py): a digest read before that is of a table still changing.
    """
    readings = [worker.get_json("/filestream/tables/digest/")]

    def unchanged() -> bool:
        time.sleep(2.5 * PROGRESS_WRITE_INTERVAL)
        readings.append(worker.get_json("/filestream/tables/digest/"))
        return readings[-1] == readings[-2]

    poll(unchanged, 60, "the tables to stop changing")
    return readings[-1]


def test_fresh_worker_restores_every_table_entry_from_the_changelog(start_worker, pipeline):
    """Many small records written back to back (what a batching producer would batch), then a
    worker with an empty data dir must restore every table exactly, refill its spool from the
    chunks whose offsets stayed uncommitted, and finish the files."""
    rng = random.Random(3)
    partial = {f"partial/{i}.bin": rng.randbytes(2 * 1024 + 1 + i) for i in range(200)}
    finished = {f"done/{i}.bin": rng.randbytes(1500) for i in range(20)}
    partial_chunks = {name: make_chunks(data, path=name, chunk_size=1024) for name, data in partial.items()}
    first = start_worker("first")
    first.wait_ready()
    sent = [c for chunks in partial_chunks.values() for c in chunks[:2]]
    sent += [c for name, data in finished.items() for c in make_chunks(data, path=name, chunk_size=1024)]
    asyncio.run(produce_chunks(pipeline, as_messages(sent)))
    output = Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab"
    wait_for_files(output, finished, workers=[first])
    poll(lambda: files_total(first, "assembling") == 200, 60, "200 partial files on the first worker")
    # A finished file's spooled bytes stay until its S3 transfer is valid; the partial files' stay.
    poll(lambda: spooled(first) == 200, 30, "S3 to release the finished files' spooled bytes")
    # And the metadata reproducer to record its 20 outcomes: the digest must be of a still table.
    poll(lambda: entries(first, "processor-results") == 20, 30, "the metadata of the finished files")
    before = still_digest(first)
    assert before["assemblies"]["entries"] == 220
    assert before["transfers"]["entries"] == 20
    assert first.stop() == 0

    fresh = start_worker("fresh")
    fresh.wait_ready(timeout=120)
    tables = ("assemblies", "transfers", "processor-results")
    after = fresh.get_json("/filestream/tables/digest/")
    assert {name: after[name] for name in tables} == {name: before[name] for name in tables}
    # The chunks of the partial files are read again from the chunk topic into the empty spool.
    poll(lambda: spooled(fresh) == 200, 60, "the partial files' chunks to be spooled again")

    asyncio.run(produce_chunks(pipeline, as_messages([chunks[2] for chunks in partial_chunks.values()])))
    wait_for_files(output, partial, workers=[fresh])
    poll(lambda: spooled(fresh) == 0, 30, "the spooled bytes to be released")


def spooled(worker) -> int:
    return entries(worker, "spool")


def entries(worker, table: str) -> int:
    return worker.get_json("/filestream/tables/digest/")[table]["entries"]
