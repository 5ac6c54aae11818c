import pytest

from tables.transfer_record import Step, TransferRecord, next_step
from tables.transfer_state import State, TransferState
from tests.tables.backoff import BACKOFF


def ready(max_retries: int = 1) -> TransferState:
    return TransferState.new("lab/a.bin", generation=4, file_hash="a" * 64, size=10, max_retries=max_retries, now=100.0)


def transferring(**kwargs) -> TransferState:
    return ready(**kwargs).queue(now=101.0).start_transfer(now=102.0)


def failed(**kwargs) -> TransferState:
    return transferring(**kwargs).fail("refused", now=110.0, **BACKOFF)


def done() -> TransferState:
    return transferring().transferred(checksum="yH2GHg==", now=103.0)


def invalid() -> TransferState:
    return done().invalidated("CRC32 differs", now=104.0)


def record(transfer: TransferState, epoch: int | None = 2) -> TransferRecord:
    return TransferRecord(transfer=transfer, partition=3, payload_epoch=epoch, chunk_count=7)


@pytest.mark.parametrize(
    "transfer, step",
    [
        (ready(), Step.QUEUE),
        (ready().queue(now=101.0), Step.UPLOAD),
        (transferring(), Step.INTERRUPTED),
        (done(), Step.VERIFY),
        (done().validated(now=104.0), Step.SETTLED),
        (invalid(), Step.FRESH_UPLOAD),
        (
            invalid()
            .retry_invalid(now=105.0)
            .start_transfer(now=106.0)
            .transferred(checksum="x", now=107.0)
            .invalidated("again", now=108.0),
            Step.SETTLED,
        ),
        (failed(), Step.WAIT),
        (failed(max_retries=0), Step.SETTLED),
    ],
    ids=["ready", "pending", "transferring", "done", "valid", "invalid", "invalid-twice", "failed", "failed-for-good"],
)
def test_next_step_resumes_every_state(transfer, step):
    assert next_step(transfer, now=111.0) is step


def test_a_failed_transfer_is_retried_once_its_backoff_is_over():
    transfer = failed()
    assert next_step(transfer, now=transfer.next_attempt_at - 0.01) is Step.WAIT
    assert next_step(transfer, now=transfer.next_attempt_at) is Step.RETRY


def test_record_round_trips_with_its_state():
    original = record(failed())
    restored = TransferRecord.loads(original.dumps())
    assert restored == original
    assert restored.transfer.state is State.FAILED


def test_summary_is_one_flat_row():
    row = record(done()).summary()
    assert row["file_id"] == "lab/a.bin" and row["state"] == "done" and row["checksum"] == "yH2GHg=="
    assert (row["partition"], row["payload_epoch"], row["chunk_count"]) == (3, 2, 7)


def test_a_record_holds_only_its_own_epoch_until_it_settles():
    active = record(failed())
    assert active.holds_payloads(2)
    assert not active.holds_payloads(1)
    assert not active.holds_payloads(None)
    assert not record(done().validated(now=104.0)).holds_payloads(2)
    assert not record(failed(), epoch=None).holds_payloads(None)


def test_moved_keeps_where_the_bytes_are():
    moved = record(ready()).moved(ready().queue(now=101.0))
    assert moved.transfer.state is State.PENDING
    assert (moved.partition, moved.payload_epoch, moved.chunk_count) == (3, 2, 7)


def test_a_pending_transfer_waits_for_its_bytes_and_for_its_time():
    pending = ready().queue(now=101.0)
    assert next_step(pending, now=111.0, bytes_ready=False) is Step.AWAIT_BYTES
    told_to_wait = transferring().interrupt("S3 does not answer", now=120.0, resume_at=130.0)
    assert told_to_wait.state is State.PENDING and told_to_wait.retries == 0
    assert next_step(told_to_wait, now=129.9) is Step.WAIT
    assert next_step(told_to_wait, now=130.0) is Step.UPLOAD


def test_a_record_needs_its_bytes_until_it_settles_and_knows_its_chunks_by_generation_and_hash():
    active = TransferRecord(failed(), partition=3, payload_epoch=2, chunk_count=7, chunk_file_hash="ab" * 32)
    assert active.needs_bytes
    assert active.describes(active.transfer.generation, "ab" * 32)
    assert not active.describes(active.transfer.generation, "cd" * 32)
    assert not active.describes(None, "ab" * 32)
    assert not active.moved(done().validated(now=104.0)).needs_bytes
    assert not TransferRecord(failed(), partition=3, payload_epoch=None, chunk_count=7).needs_bytes
