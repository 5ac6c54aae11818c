import telemetry
from tables.transfer_state import TransferState
from telemetry import RateWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_covers_the_last_window_only():
    clock = Clock()
    window = RateWindow(60, clock=clock)  # opened long before the amounts below
    clock.now += 3600
    for second in range(60):
        clock.now = 5000.0 + second
        window.add(100)
    assert window.per_second() == 100
    clock.now += 30
    assert window.per_second() == 50  # the first 30 seconds' amounts have left the window
    clock.now += 60
    assert window.per_second() == 0


def test_a_fresh_window_rates_over_the_time_it_has_been_open():
    clock = Clock()
    window = RateWindow(60, clock=clock)
    window.add(500)
    clock.now += 5
    assert window.per_second() == 100


def test_transfer_outcomes_count_attempts_and_given_up_transfers():
    def counts():
        outcomes = {o: telemetry.count(telemetry.transfer_outcomes, outcome=o) for o in telemetry.TRANSFER_OUTCOMES}
        return outcomes, telemetry.count(telemetry.transfers_given_up)

    before_outcomes, before_given_up = counts()
    transfer = TransferState.new("lab/f", generation=1, file_hash="a" * 64, size=1, max_retries=1, now=0.0)
    transfer = transfer.queue(now=1).start_transfer(now=2)
    for moved in (transfer, failed := transfer.fail("down", now=3, backoff_base=1, backoff_cap=1)):
        telemetry.transfer_recorded(moved)
    retried = failed.retry(now=5).start_transfer(now=6)
    telemetry.transfer_recorded(retried.fail("down again", now=7, backoff_base=1, backoff_cap=1))
    telemetry.transfer_recorded(retried.transferred(checksum="c", now=7).validated(now=8))

    outcomes, given_up = counts()
    assert {o: outcomes[o] - before_outcomes[o] for o in outcomes} == {"valid": 1, "failed": 2, "invalid": 0}
    assert given_up - before_given_up == 1
