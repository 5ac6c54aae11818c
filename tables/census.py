"""Counts per status (or state) and the newest rows of one table, kept as records are saved, as plain code.

The summary view and the dashboard ask for files per status, transfers per state, the files
in flight and the latest completions and failures every 2 seconds.  A table keeps one entry
per file ever received, so counting by a scan costs the whole history on every request;
:class:`Census` costs the live data instead.

Design, and why not a changelogged counter table: a count kept in a table of its own would
have to change in the same transaction as the record it counts, and Faust offers none (a
worker killed between the two writes, or a standby applying one changelog before the
other, leaves them disagreeing for good).  Here the table itself stays the only truth: a
partition's census is built by one scan of that partition, the first time it is asked
for under an assignment, and kept current by :meth:`Census.saved`, which must see every
write this worker makes.  A new assignment (a rebalance, a takeover, a standby promoted to
active: all change the consumer generation) and the end of every restore discard every
census, since records may have been written elsewhere meanwhile and a restore writes
without telling :meth:`Census.saved`; the next ask rebuilds them.  While the tables are not
ready (a rebalance or a restore under way, or not yet begun for the current assignment),
nothing is built or kept: a count taken from a half-restored partition would stay wrong
for the whole assignment.  Writes
during a build are counted as changes against the value they replace, while the scan reads
a snapshot taken when it starts (a RocksDB iterator's view), so snapshot plus changes is
exact; the rows of keys written during the build come from the writes, not the snapshot.

A delete is told to :meth:`Census.removed` like a write of nothing.

Rows are kept per label: every row of a live label (files in flight: live data), or the
newest ``n`` of a label that only grows with history (completed, failed), with as much
slack again; should removals (a completed file starting a new generation) leave fewer
than ``n`` while the count says there are more, the partition is rebuilt at the next ask.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from tables.assembly import AssemblyState, Status
from tables.transfer_record import TransferRecord
from tables.transfer_state import State

V = TypeVar("V")

IN_FLIGHT_SHOWN = 50  # files in flight a summary shows
RECENT_SHOWN = 20  # completions, failures and transfer failures a summary shows

ROWS_PER_YIELD = 500  # of a build, between two yields to the event loop


@dataclass(frozen=True)
class CensusRules(Generic[V]):
    """What a census counts and keeps: every label, a value's label and time, the rows kept per label."""

    labels: tuple[str, ...]
    label: Callable[[V], str]
    when: Callable[[V], float]
    # label -> None: every row of that label; n: the newest n (by ``when``)
    kept: Mapping[str, int | None]


class PartitionCensus(Generic[V]):
    """One partition's counts and kept rows.

    A bounded label keeps a ``floor``: no entry of that label outside its rows is newer.
    Its rows at or above the floor are the label's newest, exactly; should fewer than it
    must show remain (removals, or writes older than the floor), :attr:`needs_rebuild`.
    """

    def __init__(self, rules: CensusRules[V]) -> None:
        self.rules = rules
        self.begin()
        self._building = False

    # --- the build: begin, scanned for every entry of a snapshot, finish

    def begin(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(self.rules.labels, 0)
        self._rows: dict[str, dict[bytes, V]] = {label: {} for label in self.rules.kept}
        self._label_of: dict[bytes, str] = {}  # of every kept row: whatever its value object becomes
        self._floor: dict[str, float] = dict.fromkeys(self.rules.kept, -math.inf)
        self._building = True
        self._touched: set[bytes] = set()
        self.needs_rebuild = False

    def scanned(self, key: bytes, value: V) -> None:
        self._count(value, 1)
        if key not in self._touched:  # a write during the build knows better
            self._keep(key, value)

    def finish(self) -> None:
        self._building = False
        self._touched = set()
        for label in self.rules.kept:
            self._check(label)

    # --- changes

    def known_label(self, key: bytes) -> str | None:
        """The label of ``key``'s current value if it is a kept row (None: not kept, which says nothing)."""
        return self._label_of.get(key)

    def saved(self, key: bytes, old_label: str | None, new: V | None) -> None:
        """``key`` went from a value of ``old_label`` to ``new`` (None: absent).

        ``new`` is kept as it is: pass a copy no caller will change (the value decoded again).
        """
        if self._building:
            self._touched.add(key)
        if old_label is not None:
            self.counts[old_label] = self.counts.get(old_label, 0) - 1
            rows = self._rows.get(old_label)
            if rows is not None and rows.pop(key, None) is not None:
                del self._label_of[key]
        if new is not None:
            self._count(new, 1)
            self._keep(key, new)
        if not self._building:
            labels = {self.rules.label(new)} if new is not None else set()
            for label in labels | ({old_label} if old_label is not None else set()):
                self._check(label)

    # --- answers

    def rows(self, label: str, newest: int | None = None) -> list[tuple[bytes, V]]:
        """The kept rows of ``label``, newest first; at most ``newest`` of them."""
        floor = self._floor[label]
        rows = sorted(
            ((key, value) for key, value in self._rows[label].items() if self.rules.when(value) >= floor),
            key=lambda row: self.rules.when(row[1]),
            reverse=True,
        )
        return rows if newest is None else rows[:newest]

    def _count(self, value: V, step: int) -> None:
        label = self.rules.label(value)
        self.counts[label] = self.counts.get(label, 0) + step

    def _keep(self, key: bytes, value: V) -> None:
        label = self.rules.label(value)
        rows = self._rows.get(label)
        if rows is None:
            return
        shown = self.rules.kept[label]
        if shown is not None and self.rules.when(value) < self._floor[label]:
            return  # not among the newest; the floor already says something older may exist
        rows[key] = value
        self._label_of[key] = label
        if shown is not None and len(rows) > 2 * shown:
            oldest = min(rows, key=lambda k: self.rules.when(rows[k]))
            self._floor[label] = max(self._floor[label], self.rules.when(rows.pop(oldest)))
            del self._label_of[oldest]

    def _check(self, label: str) -> None:
        shown = self.rules.kept.get(label)
        if shown is not None and len(self.rows(label, shown)) < min(shown, self.counts[label]):
            self.needs_rebuild = True


class Census(Generic[V]):
    """The censuses of a table's partitions under one epoch, built on demand.

    ``scan(partition)`` reads one partition's entries (a snapshot, taken at its first
    item); ``epoch()`` is whatever changes with every new assignment and every restore,
    and None while the tables are not ready: then no census is built or kept.
    """

    def __init__(
        self,
        rules: CensusRules[V],
        scan: Callable[[int], Iterable[tuple[bytes, V]]],
        epoch: Callable[[], Hashable | None],
    ) -> None:
        self.rules = rules
        self._scan = scan
        self._epoch_now = epoch
        self._epoch: Hashable | None = None
        self._partitions: dict[int, PartitionCensus[V]] = {}
        self._lock = asyncio.Lock()
        self.builds = 0  # partitions built so far, for tests and benchmarks

    def _current(self) -> dict[int, PartitionCensus[V]] | None:
        """The censuses of this epoch; None while the tables are not ready."""
        epoch = self._epoch_now()
        if epoch is None or epoch != self._epoch:
            self._epoch = epoch
            self._partitions = {}
        return None if epoch is None else self._partitions

    def saved(self, partition: int, key: bytes, new: Callable[[], V | None], load_old: Callable[[], V | None]) -> None:
        """Tell the census that ``key`` of ``partition`` now holds ``new()``; ``load_old`` reads what it held.

        Call before the write (``load_old`` must read the value it replaces); ``new()`` must
        return a copy nobody changes afterwards (the record decoded again).  A partition
        without a census (never asked for under this assignment) costs nothing.
        """
        current = self._current()
        census = None if current is None else current.get(partition)
        if census is None:
            return
        label = census.known_label(key)
        if label is None:
            old = load_old()
            label = None if old is None else self.rules.label(old)
        census.saved(key, label, new())

    def removed(self, partition: int, key: bytes, load_old: Callable[[], V | None]) -> None:
        """Tell the census that ``key`` of ``partition`` is deleted; call before the delete, as :meth:`saved`."""
        self.saved(partition, key, lambda: None, load_old)

    async def partitions(self, partitions: Iterable[int]) -> list[PartitionCensus[V]]:
        """The censuses of ``partitions``, each built by one scan if it has none under this epoch.

        Empty while the tables are not ready; without a partition whose build a new epoch voided.
        """
        wanted = list(partitions)
        async with self._lock:  # one build at a time; a second asker waits for it
            for partition in wanted:
                for _ in range(3):  # a build that writes meanwhile left short is done again, a few times
                    current = self._current()
                    if current is None:
                        return []
                    census = current.get(partition)
                    if census is not None and not census.needs_rebuild:
                        break
                    await self._build(partition, current)
            current = self._current()
            return [] if current is None else [current[p] for p in wanted if p in current]

    async def _build(self, partition: int, partitions: dict[int, PartitionCensus[V]]) -> None:
        census: PartitionCensus[V] = PartitionCensus(self.rules)
        census.begin()
        partitions[partition] = census  # writes from now on are changes against the snapshot
        try:
            for count, (key, value) in enumerate(self._scan(partition), 1):
                census.scanned(key, value)
                if count % ROWS_PER_YIELD == 0:
                    await asyncio.sleep(0)
                    if self._current() is not partitions:  # a new epoch meanwhile: this build is void
                        return
        except BaseException:
            partitions.pop(partition, None)
            raise
        census.finish()
        self.builds += 1


def recount(rules: CensusRules[V], entries: Iterable[tuple[bytes, V]]) -> PartitionCensus[V]:
    """A census by one full scan: what the incremental one must always equal."""
    census: PartitionCensus[V] = PartitionCensus(rules)
    census.begin()
    for key, value in entries:
        census.scanned(key, value)
    census.finish()
    return census


def last_activity(state: AssemblyState) -> float:
    """When the file was finished, or else when its last chunk arrived."""
    return state.finished_at if state.finished_at is not None else state.last_chunk_at


FAILED_TRANSFER_STATES = (State.FAILED, State.INVALID)

# Files per status; every file in flight (live data), the latest completed and failed ones.
ASSEMBLY_RULES: CensusRules[AssemblyState] = CensusRules(
    labels=tuple(status.value for status in Status),
    label=lambda state: state.status.value,
    when=last_activity,
    kept={Status.ASSEMBLING.value: None, Status.COMPLETED.value: RECENT_SHOWN, Status.FAILED.value: RECENT_SHOWN},
)

# Transfers per state; the latest failed and invalid ones.
TRANSFER_RULES: CensusRules[TransferRecord] = CensusRules(
    labels=tuple(state.value for state in State),
    label=lambda record: record.transfer.state.value,
    when=lambda record: record.transfer.updated_at,
    kept={state.value: RECENT_SHOWN for state in FAILED_TRANSFER_STATES},
)
