import asyncio

from tables.transfer_bookkeeping import FileLocks, Probe, UnsettledTransfers
from tables.transfer_record import TransferRecord
from tables.transfer_state import TransferState


def record(settled: bool) -> TransferRecord:
    transfer = TransferState.new("lab/f", generation=1, file_hash="a" * 64, size=1, max_retries=1, now=0.0)
    if settled:
        transfer = transfer.queue(now=1).start_transfer(now=2).transferred(checksum="c", now=3).validated(now=4)
    return TransferRecord(transfer=transfer, partition=0, payload_epoch=0, chunk_count=1)


class FakeTable(dict):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scans = 0

    def scan(self):
        self.scans += 1
        return list(self.items())


def test_unsettled_records_come_from_a_scan_only_after_a_rebalance():
    table = FakeTable({b"a": record(settled=False), b"b": record(settled=True)})
    unsettled = UnsettledTransfers(table.scan, table.get)
    assert [key for key, _ in unsettled.records(1)] == [b"a"]
    table[b"c"] = record(settled=False)  # written elsewhere: not seen until the next rebalance
    assert [key for key, _ in unsettled.records(1)] == [b"a"]
    assert sorted(key for key, _ in unsettled.records(2)) == [b"a", b"c"]
    assert table.scans == 2


def test_noted_records_join_and_leave_without_a_scan():
    table = FakeTable()
    unsettled = UnsettledTransfers(table.scan, table.get)
    assert list(unsettled.records(1)) == []
    table[b"new"] = record(settled=False)
    unsettled.note(b"new", table[b"new"])
    assert [key for key, _ in unsettled.records(1)] == [b"new"]
    table[b"new"] = record(settled=True)
    unsettled.note(b"new", table[b"new"])
    assert list(unsettled.records(1)) == []
    assert table.scans == 1


def test_a_record_settled_or_gone_meanwhile_is_dropped():
    table = FakeTable({b"a": record(settled=False), b"b": record(settled=False)})
    unsettled = UnsettledTransfers(table.scan, table.get)
    list(unsettled.records(1))
    table[b"a"] = record(settled=True)
    del table[b"b"]
    assert list(unsettled.records(1)) == []


def test_a_forgotten_record_is_not_read_again():
    table = FakeTable({b"a": record(settled=False)})
    loaded = []
    unsettled = UnsettledTransfers(table.scan, lambda key: loaded.append(key) or table.get(key))
    list(unsettled.records(1))
    unsettled.forget(b"a")
    table[b"a"] = record(settled=False)  # written elsewhere: not seen until the next rebalance
    loaded.clear()
    assert list(unsettled.records(1)) == []
    assert loaded == []


def test_file_locks_serialise_one_file_and_are_forgotten_after_use():
    locks = FileLocks()
    order = []

    async def work(key: bytes, name: str, pause: float):
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(pause)
            order.append(f"{name} out")

    async def run():
        first = asyncio.create_task(work(b"f", "first", 0.02))
        await asyncio.sleep(0)
        assert locks.locked(b"f") and not locks.locked(b"other")
        await asyncio.gather(first, work(b"f", "second", 0), work(b"other", "other", 0))

    asyncio.run(run())
    assert order.index("first out") < order.index("second in")
    assert order.index("other in") < order.index("first out")  # another file does not wait
    assert len(locks) == 0 and not locks.locked(b"f")


def test_probe_asks_at_most_once_per_max_age_and_reports_changes():
    answers = iter([False, True])
    asked, changes, now = [], [], [0.0]

    async def check() -> bool:
        asked.append(now[0])
        await asyncio.sleep(0.01)
        return next(answers)

    probe = Probe(check, max_age=5.0, on_change=changes.append, clock=lambda: now[0])

    async def run():
        assert await asyncio.gather(probe(), probe(), probe()) == [False] * 3  # concurrent callers share one check
        now[0] = 4.9
        assert await probe() is False
        now[0] = 5.0
        assert await probe() is True

    asyncio.run(run())
    assert asked == [0.0, 5.0]
    assert changes == [False, True]
