"""The S3 transfer agents in-process: completed events and transfer requests drive a file's record through a fake S3."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from agents import s3_transfer
from app import app, settings
from devstack.testing import as_messages, make_chunks
from tables.transfer_driver import S3Unanswered, TransferFailed
from tables.transfer_record import TransferRecord
from tables.transfer_state import State
from tables.transfers import transfers
from tests.agents.fakes import Clock, Outside, Sent
from tests.agents.in_process import reassemble, running

DATA = b"bytes for S3, spooled by the reassembly"
PARTITION = 3


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The transfer driver's clock (its ``clock=``), moved by the test past a backoff instead of waiting it out."""
    driver_clock = Clock(time.time())
    monkeypatch.setattr(s3_transfer.driver, "clock", driver_clock)
    return driver_clock


def completed_file(run, outside: Outside, path: str) -> Sent:
    """A file reassembled by the agent (its transfer record and spooled bytes), and its completed event."""
    run(reassemble(as_messages(make_chunks(DATA, path=path)), partition=PARTITION))
    return outside.completed.sent[-1]


def transfer_of(key: bytes) -> TransferRecord:
    record = transfers.load(key)
    assert record is not None
    return record


async def put_completed(*events: Sent) -> None:
    async with running(s3_transfer.transfer_completed_files) as agent:
        for event in events:
            assert event.partition is not None  # the reassembly sends every event to its file's partition
            await agent.put(event.value, key=event.key, partition=event.partition)


async def request_transfer(key: bytes) -> None:
    async with running(s3_transfer.transfer_requested_files) as agent:
        await agent.put(b"", key=key, partition=PARTITION)


def test_a_completed_event_drives_the_transfer_to_valid(run, outside, new_path):
    completed = completed_file(run, outside, new_path("to-s3.bin"))
    record = transfer_of(completed.key)
    spooled = s3_transfer.spooled_path(completed.key, record)
    assert spooled.read_bytes() == DATA

    run(put_completed(completed))

    transfer = transfer_of(completed.key).transfer
    assert (transfer.state, transfer.retries, transfer.checksum) == (State.VALID, 0, record.expected_checksum)
    assert outside.s3.objects[completed.key] == DATA
    assert outside.s3.calls == ["reachable", "upload", "reachable", "verify"]
    assert not spooled.exists()  # settled: the spooled copy is released


def test_an_unanswered_upload_leaves_the_transfer_pending_without_using_a_retry(run, outside, new_path, clock):
    completed = completed_file(run, outside, new_path("unanswered.bin"))
    outside.s3.next_calls.fail("upload", S3Unanswered("connection refused"))

    run(put_completed(completed))

    transfer = transfer_of(completed.key).transfer
    assert (transfer.state, transfer.retries) == (State.PENDING, 0)
    assert transfer.message == "S3 did not answer: connection refused"
    assert completed.key not in outside.s3.objects

    clock.advance(s3_transfer.driver.config.unreachable_pause)
    run(request_transfer(completed.key))

    transfer = transfer_of(completed.key).transfer
    assert (transfer.state, transfer.retries) == (State.VALID, 0)


def test_a_failed_upload_uses_a_retry(run, outside, new_path, clock):
    completed = completed_file(run, outside, new_path("refused.bin"))
    outside.s3.next_calls.fail("upload", TransferFailed("S3Error: SlowDown"))

    run(put_completed(completed))

    transfer = transfer_of(completed.key).transfer
    assert (transfer.state, transfer.message) == (State.FAILED, "S3Error: SlowDown")
    assert transfer.next_attempt_at is not None and transfer.next_attempt_at > clock()

    clock.advance(settings.s3_retry_backoff_max)  # the longest backoff there is
    run(request_transfer(completed.key))

    transfer = transfer_of(completed.key).transfer
    assert (transfer.state, transfer.retries) == (State.VALID, 1)
    assert outside.s3.objects[completed.key] == DATA


# Where each call's unexpected error ends up: the driver counts an upload's as a failed attempt; a
# probe's or a verification's leaves the driver, and the agent logs it and goes on.  The probe runs
# before the record is first moved (ready → pending is written only when no upload follows).
LEFT_BY_A_BROKEN_CALL: dict[str, Callable[[TransferRecord], bool]] = {
    "reachable": lambda record: record.transfer.state is State.READY,
    "upload": lambda record: (
        (record.transfer.state, record.transfer.message) == (State.FAILED, "unexpected RuntimeError: the fake S3 broke")
    ),
    "verify": lambda record: record.transfer.state is State.DONE,
}


@pytest.mark.parametrize("call", sorted(LEFT_BY_A_BROKEN_CALL))
def test_an_unexpected_error_of_s3_is_contained_and_the_next_event_is_handled(run, outside, new_path, call):
    broken = completed_file(run, outside, new_path("broken.bin"))
    healthy = completed_file(run, outside, new_path("healthy.bin"))
    outside.s3.next_calls.fail(call, RuntimeError("the fake S3 broke"))

    run(put_completed(broken, healthy))

    assert LEFT_BY_A_BROKEN_CALL[call](transfer_of(broken.key)), transfer_of(broken.key)
    assert transfer_of(healthy.key).transfer.state is State.VALID


def test_a_rebalance_during_the_upload_writes_nothing_more_and_the_agent_goes_on(run, outside, new_path, monkeypatch):
    moved, next_one = (
        completed_file(run, outside, new_path("moved.bin")),
        completed_file(run, outside, new_path("next.bin")),
    )
    # The worker joins a new generation of the group while the upload runs: its event's assignment is gone.
    outside.s3.next_calls.do(
        "upload", lambda: monkeypatch.setattr(app, "consumer_generation_id", app.consumer_generation_id + 1)
    )

    run(put_completed(moved, next_one))

    assert outside.s3.objects[moved.key] == DATA
    # As the revoked assignment left it: the partition's next owner finds it interrupted, and resumes it.
    assert transfer_of(moved.key).transfer.state is State.TRANSFERRING
    assert transfer_of(next_one.key).transfer.state is State.VALID
