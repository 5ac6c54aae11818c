"""The reassembly agent in-process: chunk records in; events, files, transfer records and dead letters out."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from agents import reassembly, s3_transfer
from app import app, settings
from devstack.testing import as_messages, make_chunks
from models.events import COMPLETED, FAILED
from storage.objects import crc32_base64
from tables.assembly import Status
from tables.files import assemblies
from tables.transfer_state import State
from tables.transfers import transfers
from tests.agents.in_process import reassemble, running

DATA = b"a file of forty bytes, in chunks of four"
CHUNK_COUNT = len(make_chunks(DATA))
PARTITION = 2


def records_of(*paths: str) -> list[tuple[bytes, bytes]]:
    """The chunk records of ``DATA`` as file ``lab/<path>``, one file after the other."""
    return as_messages([chunk for path in paths for chunk in make_chunks(DATA, path=path)])


def test_chunks_become_the_completed_event_the_output_file_and_the_transfer_record(run, outside, new_path):
    path = new_path("run/data.bin")
    key = f"lab/{path}".encode()

    run(reassemble(records_of(path), partition=PARTITION))

    [sent] = outside.completed.sent
    assert (sent.key, sent.partition) == (key, PARTITION)
    [event] = outside.completed.events()
    assert (event.status, event.source, event.path, event.file_size) == (COMPLETED, "lab", path, len(DATA))
    assert event.file_hash == hashlib.sha256(DATA).hexdigest()
    assert event.output_path == str(settings.output_dir / "lab" / path)
    assert Path(event.output_path).read_bytes() == DATA
    record = transfers.load(key)
    assert record is not None
    assert (record.transfer.state, record.transfer.size, record.partition) == (State.READY, len(DATA), PARTITION)
    assert record.expected_checksum == crc32_base64(zlib.crc32(DATA))
    assert record.payload_epoch == event.payload_epoch is not None
    state = assemblies.load(key)
    assert state is not None and state.status is Status.COMPLETED
    assert outside.dead_letters.sent == []


def test_a_malformed_record_goes_to_the_dead_letters_with_its_reason(run, outside):
    value = b"FSC1 and then nothing a chunk record holds"

    [event] = run(reassemble([(b"lab/broken.bin", value)], partition=1))

    [dead] = outside.dead_letters.sent
    assert (dead.key, dead.value) == (b"lab/broken.bin", value)
    assert dead.headers["filestream.error.reason"].startswith(b"malformed: ")
    assert dead.headers["filestream.error.topic"] == settings.chunks_topic.encode()
    assert dead.headers["filestream.error.partition"] == b"1"
    assert dead.headers["filestream.error.offset"] == str(event.message.offset).encode()
    assert event.message.acked  # rejected for good: nothing more will be done with it
    assert outside.completed.sent == []


def test_an_unexpected_error_fails_the_file_and_the_agent_goes_on(run, outside, new_path):
    broken, next_one = new_path("broken.bin"), new_path("next.bin")
    outside.completed.next_calls.fail("send", RuntimeError("the completed event could not be built"))

    events = run(reassemble(records_of(broken, next_one), partition=0))

    failed, completed = outside.completed.events()
    assert (failed.path, failed.status) == (broken, FAILED)
    assert failed.reason == "error while handling a chunk: RuntimeError: the completed event could not be built"
    state = assemblies.load(f"lab/{broken}".encode())
    assert state is not None and state.status is Status.FAILED
    # The record whose handling broke (the last chunk of the broken file) is dead-lettered with the error.
    [dead] = outside.dead_letters.sent
    assert dead.headers["filestream.error.reason"] == b"error: RuntimeError: the completed event could not be built"
    assert dead.headers["filestream.error.offset"] == str(events[CHUNK_COUNT - 1].message.offset).encode()
    assert (completed.path, completed.status) == (next_one, COMPLETED)
    assert Path(completed.output_path).read_bytes() == DATA


def test_a_broker_refusing_the_failed_event_too_leaves_the_record_unacknowledged_and_the_agent_goes_on(
    run, outside, new_path
):
    broken, next_one = new_path("broken.bin"), new_path("next.bin")
    outside.completed.next_calls.fail("send", RuntimeError("the broker refused the completed event"))
    outside.completed.next_calls.fail("send", RuntimeError("the broker refused the failed event"))

    events = run(reassemble(records_of(broken, next_one), partition=0))

    # Nothing could be said about the file: its record comes again after a restart, and is handled then.
    assert not events[CHUNK_COUNT - 1].message.acked
    state = assemblies.load(f"lab/{broken}".encode())
    assert state is not None and state.status is Status.ASSEMBLING
    assert outside.dead_letters.sent == []
    assert [(event.path, event.status) for event in outside.completed.events()] == [(next_one, COMPLETED)]


def test_a_rebalance_while_a_record_is_handled_leaves_it_unacknowledged_and_writes_nothing_more(
    run, outside, new_path, monkeypatch
):
    moved, next_one = new_path("moved.bin"), new_path("next.bin")
    # The worker joins a new generation of the group while the completed event is being sent.
    outside.completed.next_calls.do(
        "send", lambda: monkeypatch.setattr(app, "consumer_generation_id", app.consumer_generation_id + 1)
    )

    events = run(reassemble(records_of(moved, next_one), partition=0))

    # The completion's last write (the state that says "completed") was refused: the partition's next owner
    # gets the file's records again, and completes it itself.
    state = assemblies.load(f"lab/{moved}".encode())
    assert state is not None and state.status is Status.ASSEMBLING
    assert not events[CHUNK_COUNT - 1].message.acked
    assert outside.dead_letters.sent == []
    assert [(event.path, event.status) for event in outside.completed.events()] == [
        (moved, COMPLETED),
        (next_one, COMPLETED),
    ]


def test_the_first_record_of_an_unsettled_file_is_held_until_the_file_settles(run, outside, new_path):
    path = new_path("held.bin")
    key = f"lab/{path}".encode()
    messages = as_messages(make_chunks(DATA[:12], path=path))  # 3 chunks
    tp = reassembly.chunk_partition(PARTITION)

    async def scenario() -> None:
        async with running(reassembly.reassemble) as agent:
            first = await agent.put(messages[0][1], key=key, partition=PARTITION)
            second = await agent.put(messages[1][1], key=key, partition=PARTITION)
            assert not first.message.acked
            assert second.message.acked  # the first record of the file holds the commit back for all of them
            assert reassembly.holds.held(tp)[key] == first.message.offset

            last = await agent.put(messages[2][1], key=key, partition=PARTITION)
            assert [event.status for event in outside.completed.events()] == [COMPLETED]
            # Completed, but its S3 transfer still reads the spooled bytes that only these records can refill.
            assert last.message.acked and not first.message.acked

        [completed] = outside.completed.sent
        async with running(s3_transfer.transfer_completed_files) as agent:
            await agent.put(completed.value, key=completed.key, partition=completed.partition)
        record = transfers.load(key)
        assert record is not None and record.transfer.state is State.VALID
        assert first.message.acked
        assert key not in reassembly.holds.held(tp)

    run(scenario())


def test_after_a_takeover_the_replayed_chunks_refill_the_spool_and_request_the_transfer(run, outside, new_path):
    """The partition goes and comes back (a rebalance); its chunks come again, the S3 transfer gets its bytes."""
    path = new_path("taken-over.bin")
    key = f"lab/{path}".encode()
    messages = records_of(path)
    tp = reassembly.chunk_partition(PARTITION)

    async def scenario() -> None:
        await reassembly.forget_spools_of_lost_partitions(app, assigned={tp})
        await reassemble(messages, partition=PARTITION)
        record = transfers.load(key)
        assert record is not None and reassembly.assembler.transfer_bytes_ready(key, record)

        # The worker's handlers of the rebalance, as Faust signals them: revoked, then assigned again.
        await reassembly.forget_held_records(app, revoked={tp})
        await reassembly.forget_spools_of_lost_partitions(app, assigned=set())
        await reassembly.forget_spools_of_lost_partitions(app, assigned={tp})
        assert not reassembly.assembler.transfer_bytes_ready(key, record)
        assert key not in reassembly.holds.held(tp)

        replayed = await reassemble(messages, partition=PARTITION)

        assert reassembly.assembler.transfer_bytes_ready(key, record)
        [request] = outside.transfer_requests.sent
        assert (request.key, request.partition) == (key, PARTITION)
        assert [event.status for event in outside.completed.events()] == [COMPLETED]  # completed once only
        assert not replayed[0].message.acked  # held again: the transfer still reads these bytes

        async with running(s3_transfer.transfer_requested_files) as agent:
            await agent.put(request.value, key=request.key, partition=PARTITION)
        record = transfers.load(key)
        assert record is not None and record.transfer.state is State.VALID
        assert outside.s3.objects[key] == DATA
        assert replayed[0].message.acked

    run(scenario())
