"""The reassembly agent's work as plain code: chunks in, verified files, events and transfer records out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.testing import make_chunks
from models.bounds import ChunkLimits
from models.chunk import encode_chunk
from models.events import FileEvent
from storage.spool import Spool, SpoolKey
from tables.assembler import PROGRESS_WRITE_INTERVAL, Assembler, AssemblyConfig, Verdict
from tables.assembly import AssemblyState, Status
from tables.transfer_record import TransferRecord
from tables.transfer_state import State

LIMITS = ChunkLimits(max_payload_bytes=1024**2, max_file_size=1024**4)


class Store(dict):
    """A table as the agent hands it over: load and save by key, values kept as their byte encodings."""

    def __init__(self, codec: Any) -> None:
        super().__init__()
        self.codec = codec
        self.written: list[Any] = []  # every value saved, in order, as loaded back

    def load(self, key: bytes) -> Any:
        raw = self.get(key)
        return None if raw is None else self.codec.loads(raw)

    def save(self, key: bytes, value: Any) -> None:
        self[key] = value.dumps()
        self.written.append(self.codec.loads(self[key]))


class Rig:
    def __init__(self, tmp_path: Path, *, s3: bool = True, output: bool = True) -> None:
        self.tmp_path = tmp_path
        self.output_dir = tmp_path / "output"
        self.states = Store(AssemblyState)
        self.transfers = Store(TransferRecord)
        self.events: list[FileEvent] = []
        self.refuse_events: Exception | None = None
        self.now = 1000.0
        self.config = AssemblyConfig(
            codec="filestream",
            openmsistream_source="openmsistream",
            limits=LIMITS,
            output_dir=self.output_dir,
            write_output=output,
            s3_enabled=s3,
            s3_max_retries=3,
        )
        self.restart()

    def restart(self) -> None:
        """A new process: the tables come back from the changelog, the spool starts empty."""
        spool = Spool(self.tmp_path / f"spool-{random.random()}")
        spool.wipe()
        self.assembler = Assembler(
            self.config, self.states, self.transfers, spool, self._publish, self._run, clock=lambda: self.now
        )

    async def _publish(self, key: bytes, event: FileEvent, partition: int) -> None:
        assert key == event.file_id.key
        if self.refuse_events:
            raise self.refuse_events
        self.events.append(event)

    async def _run(self, call: Callable[[], Any]) -> Any:
        return call()

    def send(self, messages: list[tuple[bytes | None, bytes]], partition: int = 0) -> list[Verdict]:
        async def run() -> list[Verdict]:
            return [await self.assembler.handle(key, value, partition) for key, value in messages]

        return asyncio.run(run())


def messages(data: bytes, path: str = "run/a.bin", chunk_size: int = 4, generation: int | None = 1) -> list:
    return [
        (c.file_id.key, encode_chunk(c))
        for c in make_chunks(data, path=path, chunk_size=chunk_size, generation=generation)
    ]


def crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_a_file_in_any_order_is_written_announced_and_handed_to_s3(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    data = random.Random(1).randbytes(37)
    chunks = messages(data)
    random.Random(2).shuffle(chunks)
    verdicts = rig.send(chunks)
    assert (rig.output_dir / "lab/run/a.bin").read_bytes() == data
    [event] = rig.events
    assert event.completed and event.file_hash == hashlib.sha256(data).hexdigest() and event.file_size == 37
    record = rig.transfers.load(b"lab/run/a.bin")
    assert record.transfer.state is State.READY and record.expected_checksum == crc(data)
    assert event.payload_epoch == record.payload_epoch == 0
    # Until S3 is done with them, the spooled bytes are needed: no verdict says settled.
    assert [v.settled for v in verdicts] == [False] * len(chunks)
    assert rig.assembler.transfer_bytes_ready(b"lab/run/a.bin", record)


def test_without_s3_the_file_is_settled_once_written_and_its_spool_goes(tmp_path: Path) -> None:
    rig = Rig(tmp_path, s3=False)
    data = b"0123456789"
    verdicts = rig.send(messages(data))
    assert [v.settled for v in verdicts] == [False, False, True]
    assert rig.transfers == {}
    assert list(rig.assembler.spool.root.rglob("*-0")) == []
    assert rig.send(messages(data)[:1])[0].settled  # a late duplicate changes nothing
    assert len(rig.events) == 1


def test_a_replay_into_an_empty_spool_completes_the_file_once_more_without_a_second_record(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    data = random.Random(3).randbytes(40)
    chunks = messages(data)
    rig.send(chunks[:-1])
    # The last chunk's state write landed, but the process died before completing the file.
    state = rig.states.load(b"lab/run/a.bin")
    state.mark(len(chunks) - 1, now=5.0)
    rig.states.save(b"lab/run/a.bin", state)
    rig.restart()
    verdicts = rig.send(chunks)
    assert (rig.output_dir / "lab/run/a.bin").read_bytes() == data
    assert len(rig.events) == 1 and rig.events[0].completed
    assert not any(v.rejected for v in verdicts)


def test_after_a_takeover_the_replay_spools_the_bytes_a_pending_transfer_needs(tmp_path: Path) -> None:
    rig = Rig(tmp_path, output=False)
    data = random.Random(4).randbytes(23)
    chunks = messages(data)
    rig.send(chunks)
    record = rig.transfers.load(b"lab/run/a.bin")
    rig.restart()
    assert not rig.assembler.transfer_bytes_ready(b"lab/run/a.bin", record)
    verdicts = rig.send(chunks)
    assert [v.transfer_ready for v in verdicts] == [False] * (len(chunks) - 1) + [True]
    assert rig.assembler.transfer_bytes_ready(b"lab/run/a.bin", record)
    spooled = rig.assembler.spool.path(SpoolKey(0, b"lab/run/a.bin", record.payload_epoch)).read_bytes()
    assert spooled == data and len(rig.events) == 1


def test_a_file_whose_hash_does_not_match_fails_and_nothing_goes_to_s3(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chunks = make_chunks(b"abcdefgh", chunk_size=4)
    lying = [c.derive(file_hash="0" * 64) for c in chunks]
    rig.send([(c.file_id.key, encode_chunk(c)) for c in lying])
    [event] = rig.events
    assert event.status == "failed" and event.reason and "file hash mismatch" in event.reason
    assert rig.transfers == {} and not (rig.output_dir / "lab/run/data.bin").exists()
    assert list(rig.assembler.spool.root.rglob("*-0")) == []


@pytest.mark.parametrize(
    "first, second",
    [("x", "x/y"), ("dir/a", "dir")],
    ids=["a file then a directory of that name", "a directory then a file of that name"],
)
def test_an_output_conflict_fails_with_its_reason_and_still_goes_to_s3(tmp_path: Path, first: str, second: str) -> None:
    rig = Rig(tmp_path)
    rig.send(messages(b"first!", path=first))
    rig.send(messages(b"second", path=second))
    failed = rig.events[-1]
    assert failed.status == "failed" and failed.reason and failed.reason.startswith("output:")
    assert failed.file_size == 6
    assert rig.transfers.load(f"lab/{second}".encode()).transfer.state is State.READY
    assert rig.states.load(f"lab/{second}".encode()).status is Status.FAILED


def test_an_output_directory_that_is_a_file_fails_each_file_and_s3_still_gets_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.output_dir.write_bytes(b"not a directory")
    rig.send(messages(b"payload"))
    [event] = rig.events
    assert event.status == "failed" and event.reason and "where a directory must be" in event.reason
    assert rig.transfers.load(b"lab/run/a.bin") is not None


@pytest.mark.parametrize("chunk_count", [4 * 10**7, 10**9, 10**12, 2**32 + 2])
def test_header_bombs_are_rejected_before_any_state_exists(tmp_path: Path, chunk_count: int) -> None:
    rig = Rig(tmp_path)
    [chunk] = make_chunks(b"tiny", chunk_size=4)
    bomb = chunk.derive(chunk_count=chunk_count, index=min(chunk_count - 1, 2**32 + 1))
    [verdict] = rig.send([(bomb.file_id.key, encode_chunk(bomb))])
    assert verdict.rejected and verdict.rejected.startswith("malformed") and verdict.settled
    assert rig.states == {}


def test_a_huge_file_in_tiny_chunks_costs_state_for_the_chunks_received_only(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    [chunk] = make_chunks(b"x", chunk_size=1)
    huge = chunk.derive(chunk_count=2**32 + 2, file_size=2**32 + 2, index=2**32 + 1, offset=2**32 + 1)
    [verdict] = rig.send([(huge.file_id.key, encode_chunk(huge))])
    assert verdict.rejected is None and not verdict.settled
    assert len(rig.states[b"lab/run/data.bin"]) < 1000


def test_chunks_contradicting_the_files_chunk_length_are_corrupt(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chunks = make_chunks(bytes(range(12)), chunk_size=4)
    [second] = make_chunks(bytes(range(12)), chunk_size=6)[1:]
    rig.send([(chunks[0].file_id.key, encode_chunk(chunks[0]))])
    [verdict] = rig.send([(second.file_id.key, encode_chunk(second))])
    assert verdict.rejected and verdict.rejected.startswith(("corrupt", "malformed"))


def test_records_that_name_no_file_or_the_wrong_one_are_rejected_and_settled(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    [(key, value)] = messages(b"abc")
    verdicts = rig.send([(key, b"garbage"), (b"lab/other", value), (None, value)])
    assert [v.rejected and v.rejected.split(":")[0] for v in verdicts] == ["malformed", "key_mismatch", "key_mismatch"]
    assert all(v.settled for v in verdicts) and rig.states == {}


def test_an_expired_partial_file_fails_saying_so_and_is_settled(tmp_path: Path) -> None:
    rig = Rig(tmp_path, s3=False)
    rig.send(messages(b"0123456789")[:1])
    state = rig.states.load(b"lab/run/a.bin")
    asyncio.run(rig.assembler.expire(b"lab/run/a.bin", state, now=state.last_chunk_at + 7200))
    [event] = rig.events
    assert event.status == "failed" and event.reason and event.reason.startswith("expired: 1 of 3 chunks")
    assert rig.assembler.settled(b"lab/run/a.bin")


def current_state(rig: Rig) -> AssemblyState:
    state = rig.assembler.state(b"lab/run/a.bin")
    assert state is not None
    return state


def written(rig: Rig) -> list[tuple[Status, int]]:
    return [(state.status, state.received_count) for state in rig.states.written]


def test_the_marks_are_written_at_the_start_at_most_once_an_interval_and_with_the_completion(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chunks = messages(bytes(range(20)))  # five chunks
    rig.send(chunks[:3])
    assert written(rig) == [(Status.ASSEMBLING, 1)]  # chunks 2 and 3 came within the interval
    assert current_state(rig).received_count == 3

    rig.now += PROGRESS_WRITE_INTERVAL
    rig.send(chunks[3:4])
    assert written(rig) == [(Status.ASSEMBLING, 1), (Status.ASSEMBLING, 4)]

    rig.send(chunks[4:])
    assert written(rig) == [(Status.ASSEMBLING, 1), (Status.ASSEMBLING, 4), (Status.COMPLETED, 0)]  # finished: no marks
    assert current_state(rig).status is Status.COMPLETED


def test_marks_held_back_are_written_on_their_partition_once_due(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.send(messages(bytes(range(20)))[:3], partition=2)
    assert rig.assembler.partitions_with_unwritten_progress() == {2}
    assert rig.assembler.write_due_progress(2) == 0  # the start was written less than the interval ago

    rig.now += PROGRESS_WRITE_INTERVAL
    assert rig.assembler.write_due_progress(1) == 0  # another partition's
    assert rig.assembler.write_due_progress(2) == 1
    assert written(rig) == [(Status.ASSEMBLING, 1), (Status.ASSEMBLING, 3)]
    assert rig.assembler.partitions_with_unwritten_progress() == set()


def test_marks_not_written_before_a_restart_come_again_with_the_replayed_chunks(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    data = bytes(range(20))
    chunks = messages(data)
    rig.send(chunks[:4])
    assert rig.states.load(b"lab/run/a.bin").received_count == 1

    rig.restart()
    rig.send(chunks[:4])  # every chunk of the unsettled file comes again
    assert written(rig) == [(Status.ASSEMBLING, 1)]  # the replay refills the spool, and writes nothing yet
    rig.send(chunks[4:])
    assert rig.states.load(b"lab/run/a.bin").status is Status.COMPLETED
    assert (rig.output_dir / "lab/run/a.bin").read_bytes() == data


def test_a_partition_forgotten_takes_its_unwritten_marks_along(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chunks = messages(bytes(range(20)))
    rig.send(chunks[:3], partition=2)
    rig.assembler.forget_partition(2)
    assert current_state(rig).received_count == 1  # the table's, as written
    rig.send(chunks, partition=2)
    assert rig.states.load(b"lab/run/a.bin").status is Status.COMPLETED


def test_an_expired_file_fails_with_its_latest_marks(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.send(messages(bytes(range(20)))[:3])
    state = current_state(rig)
    rig.now += 3600
    asyncio.run(rig.assembler.expire(b"lab/run/a.bin", state, rig.now))
    [event] = rig.events
    assert event.reason and event.reason.startswith("expired: 3 of 5 chunks")
    assert current_state(rig).status is Status.FAILED


def test_a_single_chunk_file_writes_its_state_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.send(messages(b"one", chunk_size=8))
    assert [state.status for state in rig.states.written] == [Status.COMPLETED]


def test_a_completion_that_breaks_still_writes_the_last_chunk_and_a_replay_completes_the_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chunks = messages(b"0123456789")
    rig.refuse_events = ConnectionError("the broker refused the event")
    with pytest.raises(ConnectionError):
        rig.send(chunks)
    state = rig.states.load(b"lab/run/a.bin")
    assert (state.status, state.received_count) == (Status.ASSEMBLING, 3)

    rig.refuse_events = None
    rig.restart()
    rig.send(chunks)  # the chunks of an unsettled file come again after a restart
    assert rig.states.load(b"lab/run/a.bin").status is Status.COMPLETED
    assert [event.status for event in rig.events] == ["completed"]
