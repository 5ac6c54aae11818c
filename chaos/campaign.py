"""The fault campaign: scenarios run one after another on one stack, then every file is checked.

Each scenario sends its own files under its own source name (``<scenario>/<path>``), injects
its faults, and waits until its files are delivered or nothing has changed for the stall
timeout.  The first six share one pipeline with one worker; the others each run their own
pipelines (own app id, topics, bucket, output dir, workers) on the same stack, and
``broker-kill`` also its own 3-node Apache Kafka cluster.  Every pipeline reaches S3 through
a gate of its own (``chaos/s3_gate.py``).  At the end, after every fault of every scenario,
each expected file is read back from its output directory and from S3 and compared with what
was sent; files named by hostile records are searched for outside the output directory.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from pathlib import Path

from chaos.pipeline import Campaign
from chaos.scenario import QUICK, Intensity, Scenario
from chaos.scenarios import SCENARIOS
from chaos.verdict import Outcome, judge
from devstack.stack import DEFAULT_BROKER, DevStack
from devstack.testing import s3_client

log = logging.getLogger(__name__)


def run_campaign(
    work: Path,
    seed: int,
    intensity: Intensity = QUICK,
    *,
    broker: str = DEFAULT_BROKER,
    scenarios: list[str] | None = None,
    stack: DevStack | None = None,
) -> list[Outcome]:
    """The scenarios in turn (default: all) in ``work``; the outcome of each, judged after all of them.

    On ``stack`` if given (it stays running), else on a fresh stack of ``broker``.
    """
    chosen = scenarios or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    rng = random.Random(seed)
    done: list[Scenario] = []
    with contextlib.nullcontext(stack) if stack else DevStack(log_dir=work / "logs", broker=broker) as running:
        campaign = Campaign(running, work)
        try:
            for name in chosen:
                started = time.monotonic()
                log.info("scenario %s", name)
                try:
                    scenario = SCENARIOS[name](campaign, rng, intensity)
                except Exception as exc:  # a scenario that breaks must not hide the others' rows
                    log.exception("scenario %s broke", name)
                    scenario = Scenario(name, faults="the scenario broke")
                    scenario.problems.append(f"the scenario itself failed: {type(exc).__name__}: {exc}")
                scenario.seconds = time.monotonic() - started
                log.info("scenario %s done in %.1fs", name, scenario.seconds)
                done.append(scenario)
        finally:
            campaign.close()
        client = s3_client(running)
        return [judge(client, scenario) for scenario in done]
