"""Every scenario of the campaign, by name, in the order it runs them; one module per family of faults.

A scenario is a function ``(campaign, rng, intensity) -> Scenario``: it sends its files under
its own source name, injects its faults and waits until its files are delivered.  The first
six share one pipeline (``campaign.shared_pipeline()``); the others each open their own.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from chaos.pipeline import Campaign
from chaos.scenario import Intensity, Scenario
from chaos.scenarios.hostile_records import (
    corrupted_duplicated_reordered,
    header_bombs,
    hostile_paths,
    stale_generations,
)
from chaos.scenarios.process_kills import broker_kill, kill_loop, two_workers_kill, uploader_kills, worker_kills
from chaos.scenarios.s3_outages import s3_down_at_start, s3_outages
from chaos.scenarios.unwritable_output import name_conflicts, output_dir_is_a_file

SCENARIOS: dict[str, Callable[[Campaign, random.Random, Intensity], Scenario]] = {
    "worker-kills": worker_kills,
    "s3-outages": s3_outages,
    "uploader-kills": uploader_kills,
    "corrupt-dup-reorder": corrupted_duplicated_reordered,
    "stale-generations": stale_generations,
    "hostile-paths": hostile_paths,
    "broker-kill": broker_kill,
    "two-workers-kill": two_workers_kill,
    "kill-loop": kill_loop,
    "s3-down-at-start": s3_down_at_start,
    "header-bombs": header_bombs,
    "name-conflicts": name_conflicts,
    "output-dir-is-a-file": output_dir_is_a_file,
}
SHARED_PIPELINE_SCENARIOS = tuple(list(SCENARIOS)[:6])
