"""One run on one completed file: outcomes, reading, and detection of a superseded output file."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from pathlib import Path

import orjson

from processors.api import Registry
from processors.completed_file import CompletedFile
from processors.execution import run_registration
from processors.results import ResultStatus
from tests.processors.completed import completed_event

LOCK = threading.Lock()


def run(function, event, *, topic=None):
    registry = Registry()
    if topic:
        registry.reproducer(name="under-test", topic=topic)(function)
    else:
        registry.processor(name="under-test")(function)
    return run_registration(registry.get("under-test"), event, LOCK)


def replace_atomically(path: Path, data: bytes) -> None:
    """What the reassembly agent does when a newer generation completes."""
    temp = path.with_name(path.name + ".new")
    temp.write_bytes(data)
    os.replace(temp, path)


def test_the_file_describes_the_event_and_reads_streamed_or_whole(tmp_path):
    event = completed_event(tmp_path / "out", b"a,b\n1,2\n", path="run1/x.csv", generation=7)
    seen = {}

    def inspect(file: CompletedFile, lock):
        assert lock is LOCK
        with file.open() as reader:
            seen["first_line"] = reader.readline()
            seen["rest"] = reader.read()
        seen.update(whole=file.read_bytes(), file=file)

    assert run(inspect, event).status is ResultStatus.PROCESSED
    file = seen["file"]
    assert (file.source, file.relative_path, file.generation, file.size) == ("lab", "run1/x.csv", 7, 8)
    assert file.sha256 == event.file_hash and (file.first_chunk_at, file.finished_at) == (1000.0, 1001.5)
    assert file.path == tmp_path / "out" / "lab" / "run1" / "x.csv"
    assert file.output_dir == tmp_path / "out"
    assert (seen["first_line"], seen["rest"], seen["whole"]) == (b"a,b\n", b"1,2\n", b"a,b\n1,2\n")


def test_a_raised_or_returned_exception_fails_with_its_reason(tmp_path):
    event = completed_event(tmp_path, b"data")

    def raising(file, lock):
        raise ValueError("bad column 3")

    outcome = run(raising, event)
    assert (outcome.status, outcome.reason) == (ResultStatus.FAILED, "ValueError: bad column 3")
    assert isinstance(outcome.error, ValueError)
    returned = run(lambda file, lock: RuntimeError("OpenMSIStream style"), event)
    assert (returned.status, returned.reason) == (ResultStatus.FAILED, "RuntimeError: OpenMSIStream style")


def test_a_reproducer_message_is_serialised_and_none_or_unserialisable_fails(tmp_path):
    event = completed_event(tmp_path, b"data")
    outcome = run(lambda file, lock: {"size": file.size}, event, topic="t")
    assert (outcome.status, orjson.loads(outcome.message)) == (ResultStatus.PROCESSED, {"size": 4})
    none = run(lambda file, lock: None, event, topic="t")
    assert (none.status, none.reason, none.message) == (ResultStatus.FAILED, "the reproducer returned no message", None)
    odd = run(lambda file, lock: {"value": object()}, event, topic="t")
    assert odd.status is ResultStatus.FAILED and "cannot be serialised as JSON" in odd.reason


def test_missing_output_fails_without_calling_the_user_code(tmp_path):
    event = completed_event(tmp_path, b"data")
    Path(event.output_path).unlink()
    calls = []
    outcome = run(lambda file, lock: calls.append(file), event)
    assert outcome.status is ResultStatus.FAILED and "does not exist" in outcome.reason
    not_written = run(lambda file, lock: calls.append(file), event.derive(output_path=None))
    assert not_written.status is ResultStatus.FAILED and "did not write it" in not_written.reason
    assert calls == []


def test_a_file_of_another_size_is_superseded_before_the_user_code_runs(tmp_path):
    event = completed_event(tmp_path, b"old version")
    replace_atomically(Path(event.output_path), b"the newer, longer version")
    calls = []
    outcome = run(lambda file, lock: calls.append(file), event)
    assert outcome.status is ResultStatus.SUPERSEDED and "newer version" in outcome.reason
    assert calls == []


def test_a_same_size_replacement_is_superseded_when_the_reader_covers_the_whole_file(tmp_path):
    event = completed_event(tmp_path, b"version-1")
    replace_atomically(Path(event.output_path), b"version-2")
    outcome = run(lambda file, lock: file.read_bytes(), event)
    assert outcome.status is ResultStatus.SUPERSEDED and "SHA-256" in outcome.reason
    # The read buffer (1 MiB) covers a small file whatever the processor asks for.
    assert run(lambda file, lock: file.open().read(3), event).status is ResultStatus.SUPERSEDED


def test_a_same_size_replacement_goes_unnoticed_when_only_part_of_a_large_file_is_read(tmp_path):
    """The documented gap: the newer version's own event runs the processor again on those bytes."""
    event = completed_event(tmp_path, b"1" * 3 * 1024**2)
    replace_atomically(Path(event.output_path), b"2" * 3 * 1024**2)
    assert run(lambda file, lock: file.open().read(3), event).status is ResultStatus.PROCESSED


def test_rereading_after_a_seek_back_still_verifies_and_skipping_ahead_does_not_misjudge(tmp_path):
    data = os.urandom(3 * 1024**2 + 5)
    event = completed_event(tmp_path, data)

    def seek_around(file, lock):
        with file.open() as reader:
            assert reader.read(1000) == data[:1000]
            reader.seek(0)
            assert reader.read() == data
            reader.seek(-5, io.SEEK_END)
            assert reader.read() == data[-5:]
        with file.open() as skipping:
            skipping.seek(2 * 1024**2)
            assert skipping.read() == data[2 * 1024**2 :]

    assert run(seek_around, event).status is ResultStatus.PROCESSED


def test_replacement_while_the_user_code_runs_is_superseded_even_if_it_failed(tmp_path):
    event = completed_event(tmp_path, b"version-1")
    pinned_reads = []

    def replaced_meanwhile(file, lock):
        replace_atomically(file.path, b"version-2, longer")
        pinned_reads.append(file.read_bytes())  # the pinned version, not the new file at the path
        raise RuntimeError("confused by the new content")

    outcome = run(replaced_meanwhile, event)
    assert outcome.status is ResultStatus.SUPERSEDED and "while the processor ran" in outcome.reason
    assert pinned_reads == [b"version-1"]


def test_a_large_file_is_read_through_open_in_bounded_memory(tmp_path):
    size = 64 * 1024**2
    path = tmp_path / "lab" / "big.bin"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as out:
        for _ in range(size // 1024**2):
            out.write(b"\x5a" * 1024**2)
    event = completed_event(tmp_path, b"").derive(
        path="big.bin", file_size=size, file_hash=hashlib.sha256(b"\x5a" * size).hexdigest(), output_path=str(path)
    )

    def count_bytes(file, lock):
        total = 0
        with file.open() as reader:
            while block := reader.read(256 * 1024):
                total += len(block)
        assert total == size

    tracemalloc.start()
    try:
        outcome = run(count_bytes, event)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.status is ResultStatus.PROCESSED
    assert peak < 8 * 1024**2
