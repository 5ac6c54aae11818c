"""S3 unreachable: outages in the middle of transfers, and a worker that starts while S3 is down."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter

from chaos.pipeline import Campaign, files_not_on_disk, wait_for, wait_for_delivery
from chaos.scenario import Intensity, Scenario
from chaos.scenarios.workload import MiB, random_files, split_into
from devstack.testing import file_messages

log = logging.getLogger(__name__)


IN_FLIGHT = ("ready", "pending", "transferring", "done")  # transfer states before valid


def s3_outages(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """The S3 endpoint goes down while transfers run (multipart ones included) and comes back."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("s3-outages")
    files = {
        **random_files(rng, "multipart", 2 * intensity.s3_outages, 9 * MiB, 20 * MiB),
        **random_files(rng, "single", 10 * intensity.s3_outages, 1, 2 * MiB),
    }
    scenario.expect(pipeline, files)
    downtime, in_flight, reset = 0.0, 0, 0
    for batch in split_into(list(files.items()), intensity.s3_outages):
        pipeline.produce(file_messages(dict(batch), source=scenario.name, chunk_size=MiB))
        transferring = wait_for(
            lambda: [path for path, row in pipeline.transfers(scenario.name).items() if row["state"] in IN_FLIGHT], 60
        )
        # Down while a request is on the wire, so that one breaks in the middle.
        wait_for(lambda: pipeline.gate.open_connections, 10, interval=0.001)
        reset += pipeline.gate.go_down()
        log.info("S3 down with %d transfers in flight", len(transferring or ()))
        seconds = rng.uniform(*intensity.s3_outage_seconds)
        time.sleep(seconds)
        pipeline.gate.come_back()
        downtime += seconds
        in_flight += len(transferring or ())
    scenario.faults = (
        f"{intensity.s3_outages} outages, {downtime:.0f} s down; {in_flight} transfers in flight, {reset} requests cut"
    )
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def s3_down_at_start(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """The worker starts while S3 is unreachable; the files complete; then S3 comes back."""
    scenario = Scenario("s3-down-at-start")
    files = {
        **random_files(rng, "multipart", 2, 9 * MiB, 16 * MiB),
        **random_files(rng, "single", 10, 1, 2 * MiB),
    }
    with campaign.pipeline(scenario.name) as pipeline:
        down_since = time.monotonic()
        pipeline.open(s3_up=False)
        scenario.expect(pipeline, files)
        pipeline.produce(file_messages(files, source=scenario.name, chunk_size=MiB))
        wait_for(lambda: not files_not_on_disk(pipeline, scenario, files), 60, interval=0.2)
        on_disk = len(files) - files_not_on_disk(pipeline, scenario, files)
        time.sleep(intensity.s3_down_seconds)
        pipeline.gate.come_back()
        downtime = time.monotonic() - down_since
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        states = Counter(row["state"] for row in pipeline.transfers(scenario.name).values())
        scenario.notes.append(f"transfer states at the end: {dict(states)}")
        errors = [line for line in pipeline.workers["worker"].log_tail(2000).splitlines() if "Bucket" in line]
        if errors:
            scenario.notes.append(f"{len(errors)} log lines about the bucket, the last: {errors[-1].strip()[:300]}")
    scenario.faults = f"S3 unreachable from the worker's start for {downtime:.0f} s; {on_disk} files on disk meanwhile"
    return scenario
