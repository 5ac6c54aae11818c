"""The generation policy and chunk bookkeeping, as plain code: every policy row, every arrival order."""

import hashlib
import itertools

import orjson
import pytest

from devstack.testing import make_chunks
from tables.assembly import Action, AssemblyState, Status, decide


def run(chunks, state=None):
    """Apply chunks the way the agent does; return the final state and the actions taken."""
    actions = []
    for chunk in chunks:
        decision = decide(state, chunk)
        actions.append(decision.action)
        if decision.action in (Action.START, Action.RESET):
            state = AssemblyState.begin(chunk, partition=0, now=0.0, epoch=0 if state is None else state.epoch + 1)
        if decision.action in (Action.START, Action.RESET, Action.STORE):
            state.mark(chunk.index, now=1.0)
    return state, actions


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_arrival_order_completes_exactly_once(order):
    chunks = make_chunks(b"0123456789abcdef", chunk_size=4)
    state, actions = run([chunks[i] for i in order])
    assert state.complete
    assert actions[0] is Action.START
    assert actions[1:] == [Action.STORE] * 3
    assert state.received_indices() == [0, 1, 2, 3]


def test_duplicates_are_ignored_in_any_position():
    chunks = make_chunks(b"0123456789", chunk_size=4)
    state, actions = run([chunks[0], chunks[0], chunks[2], chunks[0], chunks[1], chunks[2]])
    assert actions == [Action.START, Action.DUPLICATE, Action.STORE, Action.DUPLICATE, Action.STORE, Action.DUPLICATE]
    assert state.complete and state.received_count == 3


def test_chunks_of_a_completed_generation_are_duplicates():
    chunks = make_chunks(b"abcdefgh", chunk_size=4)
    state, _ = run(chunks)
    state.finish(Status.COMPLETED, now=2.0)
    assert decide(state, chunks[1]).action is Action.DUPLICATE


class TestExplicitGenerations:
    def test_higher_generation_resets_even_when_smaller(self):
        old = make_chunks(b"a much longer first version", generation=5)
        new = make_chunks(b"short", generation=6)
        state, actions = run([old[0], old[1], new[0]])
        assert actions == [Action.START, Action.STORE, Action.RESET]
        assert state.generation == 6 and state.epoch == 1 and state.received_indices() == [0]

    def test_lower_generation_is_stale(self):
        new = make_chunks(b"new content", generation=7)
        old = make_chunks(b"old content that was longer", generation=6)
        state, actions = run([new[0], old[0], old[1]])
        assert actions == [Action.START, Action.STALE, Action.STALE]
        assert state.generation == 7

    def test_same_generation_with_other_content_is_corrupt(self):
        first = make_chunks(b"content A", generation=3)
        second = make_chunks(b"content B", generation=3)
        state, actions = run([first[0], second[1]])
        assert actions == [Action.START, Action.CORRUPT]

    def test_a_newer_generation_after_completion_starts_over(self):
        first = make_chunks(b"version one", generation=1)
        state, _ = run(first)
        state.finish(Status.COMPLETED, now=2.0)
        second = make_chunks(b"version two!", generation=2)
        assert decide(state, second[2]).action is Action.RESET
        assert state.received_indices() == []  # the reset deletes nothing of the finished generation


class TestDirectionalPolicyWithoutGenerations:
    """OpenMSIStream's DownloadDataFile._apply_generation_policy, row by row."""

    def test_same_hash_is_accepted(self):
        chunks = make_chunks(b"same content", generation=None)
        state, actions = run(chunks)
        assert actions == [Action.START] + [Action.STORE] * (len(chunks) - 1)
        assert state.complete

    def test_different_hash_and_more_chunks_resets_and_adopts(self):
        old = make_chunks(b"12345678", generation=None)
        new = make_chunks(b"123456789abc", generation=None)
        state, actions = run([old[0], new[2]])
        assert actions == [Action.START, Action.RESET]
        assert state.file_hash == new[0].file_hash and state.chunk_count == 3

    @pytest.mark.parametrize("new_data", [b"abcdefgh", b"abcd"], ids=["equal-count", "fewer"])
    def test_different_hash_and_equal_or_fewer_chunks_is_skipped(self, new_data):
        old = make_chunks(b"12345678", generation=None)
        new = make_chunks(new_data, generation=None)
        state, actions = run([old[0], new[0]])
        assert actions == [Action.START, Action.STALE]
        assert state.file_hash == old[0].file_hash

    def test_same_hash_with_another_chunk_count_is_corruption(self):
        good = make_chunks(b"12345678", generation=None)
        forged = make_chunks(b"12345678", generation=None, chunk_size=2)
        decision = decide(run([good[0]])[0], forged[0])
        assert decision.action is Action.CORRUPT
        assert "chunks" in decision.reason

    def test_same_content_resent_after_a_failure_retries(self):
        chunks = make_chunks(b"12345678", generation=None)
        state, _ = run(chunks)
        state.finish(Status.FAILED, now=2.0, reason="file hash mismatch")
        assert decide(state, chunks[0]).action is Action.RESET

    def test_mixed_records_fall_back_to_the_directional_policy(self):
        numbered = make_chunks(b"12345678", generation=4)
        unnumbered = make_chunks(b"123456789abc", generation=None)
        assert run([numbered[0], unnumbered[0]])[1] == [Action.START, Action.RESET]


def test_state_round_trips_through_bytes():
    chunks = make_chunks(bytes(range(200)), chunk_size=7)
    state, _ = run(chunks[::3])
    state.rejected_chunks = 2
    copy = AssemblyState.loads(state.dumps())
    assert copy == state
    assert copy.received_indices() == list(range(0, len(chunks), 3))


def test_unmark_forgets_a_chunk():
    chunks = make_chunks(b"abcdefghijkl", chunk_size=4)
    state, _ = run(chunks)
    state.unmark(1)
    assert not state.complete and state.received_indices() == [0, 2]
    state.unmark(1)
    assert state.received_count == 2


def with_mtime(chunks, mtime):
    return [chunk.derive(mtime=mtime) for chunk in chunks]


class TestMtimeTieBreak:
    """OpenMSIStream's tie-break for equal chunk counts: only a strictly newer mtime, known on both sides, wins."""

    OLD = b"12345678"
    EDITED = b"abcdefgh"  # same size, so as many chunks

    def test_equal_counts_and_a_newer_mtime_reset_and_adopt(self):
        old = with_mtime(make_chunks(self.OLD, generation=None), 100.0)
        new = with_mtime(make_chunks(self.EDITED, generation=None), 200.0)
        state, actions = run([old[0], new[1]])
        assert actions == [Action.START, Action.RESET]
        assert (state.file_hash, state.mtime) == (new[0].file_hash, 200.0)

    @pytest.mark.parametrize(
        "old_mtime, new_mtime",
        [(200.0, 100.0), (100.0, 100.0), (100.0, None), (None, 200.0), (None, None)],
        ids=["older", "equal", "new-unknown", "old-unknown", "both-unknown"],
    )
    def test_equal_counts_without_a_strictly_newer_known_mtime_are_skipped(self, old_mtime, new_mtime):
        old = with_mtime(make_chunks(self.OLD, generation=None), old_mtime)
        new = with_mtime(make_chunks(self.EDITED, generation=None), new_mtime)
        state, actions = run([old[0], new[0]])
        assert actions == [Action.START, Action.STALE]
        assert state.file_hash == old[0].file_hash

    def test_fewer_chunks_are_skipped_whatever_the_mtime(self):
        old = with_mtime(make_chunks(self.OLD, generation=None), 100.0)
        new = with_mtime(make_chunks(b"abcd", generation=None), 200.0)
        assert run([old[0], new[0]])[1] == [Action.START, Action.STALE]

    def test_a_file_edited_in_place_after_completion_is_delivered_again(self):
        old = with_mtime(make_chunks(self.OLD, generation=None), 100.0)
        state, _ = run(old)
        state.finish(Status.COMPLETED, now=2.0)
        new = with_mtime(make_chunks(self.EDITED, generation=None), 200.0)
        assert decide(state, new[0]).action is Action.RESET

    def test_the_older_generations_stragglers_never_win_back(self):
        old = with_mtime(make_chunks(self.OLD, generation=None), 100.0)
        new = with_mtime(make_chunks(self.EDITED, generation=None), 200.0)
        state, actions = run([old[0], new[0], old[1], new[1]])
        assert actions == [Action.START, Action.RESET, Action.STALE, Action.STORE]
        assert state.complete and state.file_hash == new[0].file_hash


class TestRecordsWithoutASize:
    """OpenMSIStream records: SHA-512 hashes and no file size until every chunk is in."""

    def chunks(self, data: bytes):
        return [
            chunk.derive(
                file_size=None,
                hash_name="sha512",
                file_hash=hashlib.sha512(data).hexdigest(),
                chunk_hash=hashlib.sha512(chunk.payload).hexdigest(),
            )
            for chunk in make_chunks(data, generation=None)
        ]

    def test_they_assemble_and_the_state_keeps_their_hash_name(self):
        state, actions = run(self.chunks(b"0123456789"))
        assert actions == [Action.START, Action.STORE, Action.STORE]
        assert state.complete and state.file_size is None and state.hash_name == "sha512"
        assert AssemblyState.loads(state.dumps()) == state

    def test_a_resent_chunk_after_completion_is_a_duplicate(self):
        chunks = self.chunks(b"0123456789")
        state, _ = run(chunks)
        state.finish(Status.COMPLETED, now=2.0)
        assert decide(state, chunks[1]).action is Action.DUPLICATE


def test_a_state_stored_before_hash_names_existed_loads_as_sha256():
    state, _ = run(make_chunks(b"abcdefgh"))
    stored = orjson.loads(state.dumps())
    del stored["hash_name"]
    assert AssemblyState.loads(orjson.dumps(stored)).hash_name == "sha256"
