"""The transfer driver as plain code: which records it writes on the way, with an in-memory table and a fake S3."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

import pytest

from storage.objects import crc32_base64
from tables.transfer_driver import DriverConfig, S3Unanswered, TransferDriver
from tables.transfer_record import TransferRecord
from tables.transfer_state import State, TransferState
from tests.agents.fakes import FakeS3

KEY = b"lab\x00run/1.bin"
DATA = b"the spooled bytes of one file"


class MemoryRecords:
    """The transfer table: its current records, and every record written, in order."""

    def __init__(self) -> None:
        self.current: dict[bytes, TransferRecord] = {}
        self.written: list[TransferRecord] = []

    def load(self, key: bytes) -> TransferRecord | None:
        return self.current.get(key)

    def save(self, key: bytes, record: TransferRecord) -> None:
        self.current[key] = record
        self.written.append(record)

    def states(self) -> list[State]:
        return [record.transfer.state for record in self.written]


def ready_record(generation: int = 1) -> TransferRecord:
    transfer = TransferState.new(
        "lab/run/1.bin", generation=generation, file_hash="ab" * 32, size=len(DATA), max_retries=2, now=1.0
    )
    return TransferRecord(transfer, partition=0, payload_epoch=0, chunk_count=1, expected_checksum=_crc(DATA))


def _crc(data: bytes) -> str:
    return crc32_base64(zlib.crc32(data))


@pytest.fixture
def spooled(tmp_path: Path) -> Path:
    path = tmp_path / "spooled"
    path.write_bytes(DATA)
    return path


def make_driver(records: MemoryRecords, s3: FakeS3, spooled: Path, *, bytes_ready: bool = True) -> TransferDriver:
    return TransferDriver(
        records,
        s3,
        DriverConfig(backoff_base=1.0, backoff_cap=10.0, concurrency=2),
        bytes_ready=lambda key, record: bytes_ready,
        spooled_path=lambda key, record: spooled,
        release=lambda key, record: None,
        clock=lambda: 2.0,
    )


def drive(records: MemoryRecords, s3: FakeS3, spooled: Path, **options: bool) -> None:
    asyncio.run(make_driver(records, s3, spooled, **options).drive(KEY))


def test_a_ready_record_is_written_twice_on_its_way_to_valid(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    records.current[KEY] = ready_record()

    drive(records, s3, spooled)

    assert records.states() == [State.TRANSFERRING, State.VALID]
    assert s3.calls == ["reachable", "upload", "reachable", "verify"]
    assert s3.objects[KEY] == DATA
    assert records.current[KEY].transfer.checksum == _crc(DATA)


def test_an_upload_whose_answer_names_the_stored_crc32_is_valid_without_a_verification(spooled):
    records, s3 = MemoryRecords(), FakeS3(confirms=True)
    records.current[KEY] = ready_record()

    drive(records, s3, spooled)

    assert records.states() == [State.TRANSFERRING, State.VALID]
    assert s3.calls == ["reachable", "upload"]
    assert records.current[KEY].transfer.checksum == _crc(DATA)


def test_a_verification_without_answer_writes_done_and_the_next_drive_verifies_without_uploading(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    records.current[KEY] = ready_record()
    s3.next_calls.fail("verify", S3Unanswered("timed out"))

    drive(records, s3, spooled)
    assert records.states() == [State.TRANSFERRING, State.DONE]

    drive(records, s3, spooled)
    assert records.states() == [State.TRANSFERRING, State.DONE, State.VALID]
    assert s3.calls.count("upload") == 1


def test_an_unexpected_error_of_the_verification_leaves_the_record_done(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    records.current[KEY] = ready_record()
    s3.next_calls.fail("verify", RuntimeError("broken"))

    with pytest.raises(RuntimeError, match="broken"):
        drive(records, s3, spooled)

    assert records.states() == [State.TRANSFERRING, State.DONE]


def test_an_upload_without_answer_is_written_pending_with_its_pause(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    records.current[KEY] = ready_record()
    s3.next_calls.fail("upload", S3Unanswered("connection refused"))

    drive(records, s3, spooled)

    assert records.states() == [State.TRANSFERRING, State.PENDING]
    pending = records.current[KEY].transfer
    assert (pending.retries, pending.message) == (0, "S3 did not answer: connection refused")
    assert pending.next_attempt_at is not None and pending.next_attempt_at > 2.0


def test_a_record_whose_bytes_are_not_here_is_written_pending_and_waits(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    records.current[KEY] = ready_record()

    drive(records, s3, spooled, bytes_ready=False)

    assert records.states() == [State.PENDING]
    assert s3.calls == []


def test_an_interrupted_upload_is_resumed_with_one_write_before_the_upload(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    ready = ready_record()
    records.current[KEY] = ready.moved(ready.transfer.queue(now=1.0).start_transfer(now=1.0))

    drive(records, s3, spooled)

    assert records.states() == [State.TRANSFERRING, State.VALID]
    assert records.current[KEY].transfer.retries == 0


def test_a_newer_generation_recorded_during_the_upload_is_never_overwritten(spooled):
    records, s3 = MemoryRecords(), FakeS3()
    records.current[KEY] = ready_record(generation=1)
    newer = ready_record(generation=2)
    s3.next_calls.do("upload", lambda: records.current.__setitem__(KEY, newer))

    drive(records, s3, spooled)

    assert records.states() == [State.TRANSFERRING]
    assert records.current[KEY] is newer
    assert "verify" not in s3.calls
