import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from tables.census import (
    ASSEMBLY_RULES,
    TRANSFER_RULES,
    Census,
    CensusRules,
    PartitionCensus,
    recount,
)

# A value is (label, time); "live" keeps every row, "done" the newest 2, "gone" none.
RULES: CensusRules[tuple[str, float]] = CensusRules(
    labels=("live", "done", "gone"),
    label=lambda value: value[0],
    when=lambda value: value[1],
    kept={"live": None, "done": 2},
)

values = st.tuples(st.sampled_from(RULES.labels), st.floats(0, 100, allow_nan=False))
keys = st.binary(min_size=1, max_size=1).map(lambda b: bytes([b[0] % 6]))
writes = st.lists(st.tuples(keys, values), max_size=40)
# None: the key is deleted (a retention sweep)
changes = st.lists(st.tuples(keys, st.one_of(st.none(), values)), max_size=40)


def expected_rows(table, label, shown):
    rows = sorted(((k, v) for k, v in table.items() if v[0] == label), key=lambda row: row[1][1], reverse=True)
    return rows[:shown]


def same_answers(census, table):
    assert census.counts == recount(RULES, table.items()).counts
    assert dict(census.rows("live")) == dict(expected_rows(table, "live", None))
    assert [v[1] for _, v in census.rows("live")] == sorted(
        (v[1] for v in table.values() if v[0] == "live"), reverse=True
    )
    # Timestamps may tie: compare the times of the newest two, and that each row is current.
    done = census.rows("done", 2)
    assert [v[1] for _, v in done] == [v[1] for _, v in expected_rows(table, "done", 2)]
    assert all(table[k] == v for k, v in done)


class Harness:
    """A table of one partition with its census, written as the Faust side writes it."""

    def __init__(self, initial):
        self.table = dict(initial)
        self.generation = 1
        self.census = Census(RULES, lambda partition: iter(list(self.table.items())), lambda: self.generation)

    def write(self, key, value):
        if value is None:
            self.census.removed(0, key, lambda: self.table.get(key))
            self.table.pop(key, None)
            return
        self.census.saved(0, key, lambda: value, lambda: self.table.get(key))
        self.table[key] = value

    def ask(self):
        return asyncio.run(self.census.partitions([0]))[0]


@settings(max_examples=300, deadline=None)
@given(initial=writes, before=changes, after=changes)
def test_incremental_counts_equal_a_full_recount(initial, before, after):
    harness = Harness(initial)
    for key, value in before:  # no census yet: writes cost nothing and are not needed
        harness.write(key, value)
    census = harness.ask()
    same_answers(census, harness.table)
    for key, value in after:
        harness.write(key, value)
        if census.needs_rebuild:
            census = harness.ask()
        same_answers(census, harness.table)


@settings(max_examples=300, deadline=None)
@given(initial=writes, during=changes, cut=st.integers(0, 40))
def test_writes_during_a_build_count_against_the_snapshot(initial, during, cut):
    table = dict(initial)
    snapshot = list(table.items())  # what the scan's iterator sees, from its start
    census: PartitionCensus[tuple[str, float]] = PartitionCensus(RULES)
    census.begin()
    for key, value in snapshot[:cut]:
        census.scanned(key, value)
    for key, value in during:
        label = census.known_label(key)
        if label is None and key in table:
            label = table[key][0]
        census.saved(key, label, value)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    for key, value in snapshot[cut:]:
        census.scanned(key, value)
    census.finish()
    assert census.counts == recount(RULES, table.items()).counts
    if census.needs_rebuild:  # as Census.partitions does: rows lost to writes during the build
        census = recount(RULES, table.items())
    same_answers(census, table)


def test_a_new_assignment_discards_the_census_and_rebuilds_it():
    harness = Harness({b"a": ("live", 1.0)})
    harness.ask()
    assert harness.census.builds == 1
    harness.table[b"b"] = ("live", 2.0)  # written elsewhere (another worker, a restore)
    assert harness.ask().counts["live"] == 1  # same assignment: not rescanned
    harness.generation = 2
    harness.write(b"c", ("live", 3.0))  # a write under an assignment not yet asked about: ignored
    assert harness.ask().counts["live"] == 3
    assert harness.census.builds == 2


def test_a_bounded_list_emptied_by_removals_is_rebuilt():
    harness = Harness({bytes([i]): ("done", float(i)) for i in range(10)})
    census = harness.ask()
    assert [k for k, _ in census.rows("done", 2)] == [bytes([9]), bytes([8])]
    for i in range(9, 1, -1):  # the newest ones start again
        harness.write(bytes([i]), ("live", 100.0 + i))
    assert census.needs_rebuild
    census = harness.ask()
    assert [k for k, _ in census.rows("done", 2)] == [bytes([1]), bytes([0])]
    assert census.counts == {"live": 8, "done": 2, "gone": 0}


def test_deleting_kept_and_unkept_rows_keeps_the_counts_and_rebuilds_a_list_left_short():
    harness = Harness({bytes([i]): ("done", float(i)) for i in range(10)} | {b"x": ("live", 5.0)})
    census = harness.ask()
    harness.write(bytes([0]), None)  # the oldest: below the kept rows, as a retention deletes
    harness.write(b"x", None)
    harness.write(b"absent", None)
    assert not census.needs_rebuild
    assert census.counts == {"live": 0, "done": 9, "gone": 0}
    assert census.rows("live") == []
    for i in range(9, 1, -1):
        harness.write(bytes([i]), None)
    assert census.needs_rebuild
    census = harness.ask()
    assert census.counts == {"live": 0, "done": 1, "gone": 0}
    assert [k for k, _ in census.rows("done", 2)] == [bytes([1])]


def test_a_partition_not_asked_for_costs_nothing():
    harness = Harness({})
    harness.ask()
    never = lambda: (_ for _ in ()).throw(AssertionError("read"))  # noqa: E731
    harness.census.saved(5, b"k", never, never)


def test_a_build_under_an_assignment_that_ends_is_void():
    table = {bytes([i % 256, i // 256]): ("live", float(i)) for i in range(1200)}
    generation = [1]

    def scan(partition):
        for count, entry in enumerate(list(table.items())):
            if count == 600:
                generation[0] = 2
            yield entry

    census = Census(RULES, scan, lambda: generation[0])
    (answer,) = asyncio.run(census.partitions([0]))
    assert answer.counts["live"] == 1200  # the half-built census was dropped and built again, whole
    assert census.builds == 1


def test_nothing_is_built_or_kept_while_the_tables_are_not_ready():
    """A census built from a half-restored partition would miss what the restore writes next, for good."""
    table = {b"a": ("live", 1.0)}
    epoch = [None]  # assigned, the restore not yet begun
    census = Census(RULES, lambda partition: iter(list(table.items())), lambda: epoch[0])
    assert asyncio.run(census.partitions([0])) == []
    assert census.builds == 0
    table[b"b"] = ("live", 2.0)  # the restore writes without telling the census
    table[b"c"] = ("done", 3.0)
    epoch[0] = (1, 1)  # the restore ended
    (answer,) = asyncio.run(census.partitions([0]))
    assert answer.counts == recount(RULES, table.items()).counts == {"live": 2, "done": 1, "gone": 0}


def test_a_restore_that_ends_discards_the_censuses_and_a_build_it_overlaps_is_void():
    table = {bytes([i % 256, i // 256]): ("live", float(i)) for i in range(1200)}
    epoch = [(1, 1)]
    interrupted = [False]

    def scan(partition):
        for count, entry in enumerate(list(table.items())):
            if count == 600 and not interrupted[0]:  # a rebalance and a restore begin mid-build
                interrupted[0] = True
                epoch[0] = None
            yield entry

    census = Census(RULES, scan, lambda: epoch[0])
    assert asyncio.run(census.partitions([0])) == []
    assert census.builds == 0
    epoch[0] = (1, 2)  # the same assignment, restored anew
    (answer,) = asyncio.run(census.partitions([0]))
    table[b"new"] = ("done", 5.0)  # written by a restore, unseen by the census
    epoch[0] = (1, 3)
    (again,) = asyncio.run(census.partitions([0]))
    assert again is not answer
    assert again.counts == {"live": 1200, "done": 1, "gone": 0}
    assert census.builds == 2


def test_the_rules_name_every_status_and_state():
    assert set(ASSEMBLY_RULES.labels) == {"assembling", "completed", "failed"}
    assert {"failed", "invalid", "valid", "done"} <= set(TRANSFER_RULES.labels)


def test_counts_follow_the_saved_value_whatever_the_callers_object_becomes():
    """The assembler changes its AssemblyState in place (finish) before saving it again."""
    harness = Harness({})
    census = harness.ask()
    value = ["live", 1.0]  # a mutable record
    harness.census.saved(0, b"k", lambda: tuple(value), lambda: None)
    harness.table[b"k"] = tuple(value)
    value[0] = "done"  # changed by its caller; the census kept its own copy
    harness.write(b"k", tuple(value))
    assert census.counts == {"live": 0, "done": 1, "gone": 0}
