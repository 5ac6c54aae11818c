"""The quick fault campaign (``python -m chaos``) on a stack of its own: nothing lost, corrupt or escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.campaign import QUICK, report, run_campaign

pytestmark = pytest.mark.e2e


def test_quick_fault_campaign_delivers_every_file_intact(tmp_path: Path) -> None:
    outcomes = run_campaign(tmp_path, seed=7, intensity=QUICK)
    assert [outcome.scenario for outcome in outcomes if not outcome.ok] == [], report(outcomes)
