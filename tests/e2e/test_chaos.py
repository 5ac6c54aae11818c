"""The quick fault campaign (``python -m chaos``): nothing lost, corrupt or escaped, no worker dead.

The six scenarios that share one pipeline run together; every other one on its own, so that a
failing one names its defect.  All of them run on the session's Kafka stack (each pipeline with
its own app id, topics, bucket, output dir and S3 gate); broker-kill starts its own 3-node cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.campaign import run_campaign
from chaos.scenario import QUICK
from chaos.scenarios import SCENARIOS, SHARED_PIPELINE_SCENARIOS
from chaos.verdict import report
from devstack.stack import DevStack

pytestmark = pytest.mark.e2e

GROUPS = {
    "shared-pipeline": list(SHARED_PIPELINE_SCENARIOS),
    **{name: [name] for name in SCENARIOS if name not in SHARED_PIPELINE_SCENARIOS},
}


@pytest.mark.parametrize("group", GROUPS)
def test_quick_fault_campaign_delivers_every_file_intact(group: str, dev_stack: DevStack, tmp_path: Path) -> None:
    outcomes = run_campaign(tmp_path, seed=7, intensity=QUICK, scenarios=GROUPS[group], stack=dev_stack)
    assert [outcome.scenario for outcome in outcomes] == GROUPS[group]
    assert [outcome.scenario for outcome in outcomes if not outcome.ok] == [], report(outcomes)
