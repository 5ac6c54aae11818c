"""When the tables count as ready: the census, the views and the health check trust them only then."""

from __future__ import annotations

import tables.files
from app import app
from tables.files import tables_epoch, tables_ready


def test_a_new_assignment_is_not_ready_until_its_restore_ends_and_each_restore_is_a_new_epoch(run, monkeypatch):
    # What the restores below note is put back afterwards, as the app's flags are: later tests need ready tables.
    for name in ("generation", "ended"):
        monkeypatch.setattr(tables.files._restores, name, getattr(tables.files._restores, name))
    ready_epoch = tables_epoch()
    assert ready_epoch is not None
    generation = app.consumer_generation_id
    # The assignment changed: Faust's in_recovery is not set yet, the restore task has not run.
    monkeypatch.setattr(app, "consumer_generation_id", generation + 1)
    assert not tables_ready()
    monkeypatch.setattr(app, "in_recovery", True)
    assert not tables_ready()
    run(app.on_rebalance_complete.send())  # the restore applied every changelog record
    assert not tables_ready()  # Faust clears in_recovery right after
    monkeypatch.setattr(app, "in_recovery", False)
    restored_epoch = tables_epoch()
    assert restored_epoch is not None and restored_epoch != ready_epoch
    monkeypatch.setattr(app, "rebalancing", True)
    assert not tables_ready()
    monkeypatch.setattr(app, "rebalancing", False)
    run(app.on_rebalance_complete.send())  # the same assignment restored again
    assert tables_epoch() not in (None, restored_epoch)
