"""SIGKILLed processes: the worker, the upload command, a Kafka broker, one of two workers, workers in turn."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from chaos.pipeline import Campaign, delivered, file_report, files_not_on_disk, wait_for, wait_for_delivery
from chaos.scenario import Intensity, Scenario
from chaos.scenarios.workload import KiB, MiB, random_files, split_into, write_sources
from devstack.stack import DevStack
from devstack.testing import wait_for_split

log = logging.getLogger(__name__)


# Two fresh workers split the partitions within seconds; one that stays unready this long is stuck.
SPLIT_TIMEOUT = 120.0


def worker_kills(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """SIGKILL the worker at random moments of an upload; restart it on its data dir or on an empty one."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("worker-kills")
    files = random_files(rng, "kill", intensity.worker_kill_files, 1, 3 * MiB)
    scenario.expect(pipeline, files)
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    upload = pipeline.upload(sources, scenario.name)
    restarts = {True: 0, False: 0}
    not_yet_on_disk = []

    # The first kill once files have started to arrive, so that some are done and some in flight.
    wait_for(lambda: files_not_on_disk(pipeline, scenario, files) < len(files), 60)
    for kill in range(intensity.worker_kills):
        time.sleep(rng.uniform(0.0, 0.5) if kill == 0 else rng.uniform(0.5, 3.0))
        not_yet_on_disk.append(files_not_on_disk(pipeline, scenario, files))
        pipeline.kill_worker()
        fresh = kill % 2 == 0  # the harder case first: nothing on disk, everything from the changelog
        restarts[fresh] += 1
        pipeline.start_worker(fresh_data_dir=fresh)
    if upload.wait() != 0:
        scenario.notes.append(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
    scenario.faults = (
        f"SIGKILL x{intensity.worker_kills} with {'/'.join(map(str, not_yet_on_disk))} files not yet on disk; "
        f"restarted on an empty data dir x{restarts[True]}, on its own x{restarts[False]}"
    )
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def uploader_kills(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """SIGKILL the upload command mid-upload, run it again: its registry makes it resume."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("uploader-kills")
    files = random_files(rng, "upload", intensity.uploader_files, 1, 4 * MiB)
    scenario.expect(pipeline, files)
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    # Small chunks keep the upload busy long enough to be caught in the middle.
    small_chunks = ("--chunk-size", "64KiB")
    mid_upload = 0
    for _ in range(intensity.uploader_kills):
        upload = pipeline.upload(sources, scenario.name, *small_chunks)
        time.sleep(rng.uniform(1.5, 3.0))  # the command spends its first second starting Python and Faust
        mid_upload += not upload.finished()
        upload.kill()
    final = pipeline.upload(sources, scenario.name, *small_chunks)
    if final.wait() != 0:
        scenario.notes.append(f"the resumed upload failed ({final.returncode}):\n{final.log_tail()}")
    scenario.faults = f"SIGKILL x{intensity.uploader_kills} ({mid_upload} mid-upload), then a resumed run"
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def broker_kill(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """On a 3-node Kafka cluster (replication factor 3, min.insync.replicas 2), SIGKILL one broker mid-upload."""
    scenario = Scenario("broker-kill")
    if campaign.stack.kafka is None:
        scenario.not_run = "needs a 3-node Apache Kafka cluster: run with --broker kafka"
        return scenario
    files = {
        **random_files(rng, "small", intensity.broker_kill_files, 1, 2 * MiB),
        **random_files(rng, "large", 2, 9 * MiB, 16 * MiB),
    }
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    with (
        DevStack(log_dir=campaign.work / scenario.name / "cluster", broker="kafka", kafka_nodes=3) as cluster,
        campaign.pipeline(scenario.name, broker_stack=cluster, FILESTREAM_REPLICATION_FACTOR="3") as pipeline,
    ):
        kafka = cluster.kafka
        if kafka is None:
            raise RuntimeError("a kafka DevStack without a Kafka cluster")
        pipeline.open()
        scenario.expect(pipeline, files)
        upload = pipeline.upload(sources, scenario.name)
        wait_for(lambda: files_not_on_disk(pipeline, scenario, files) < len(files), 60)
        time.sleep(rng.uniform(0.0, 1.0))
        node = rng.randrange(kafka.nodes)
        not_on_disk = files_not_on_disk(pipeline, scenario, files)
        kafka.kill_node(node)
        log.info("Kafka node %d SIGKILLed with %d files not on disk", node + 1, not_on_disk)
        time.sleep(intensity.broker_down_seconds)
        kafka.restart_node(node)
        if upload.wait() != 0:
            scenario.problems.append(f"the upload command failed ({upload.returncode}):\n{upload.log_tail()}")
        scenario.faults = (
            f"node {node + 1} of 3 SIGKILLed with {not_on_disk} of {len(files)} files not yet on disk, "
            f"restarted {intensity.broker_down_seconds:.0f} s later"
        )
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        scenario.notes += asyncio.run(under_replicated(cluster.bootstrap_servers, 3, 2))
    return scenario


async def under_replicated(bootstrap: str, replicas: int, min_insync: int) -> list[str]:
    """Topics with fewer replicas or a lower ``min.insync.replicas`` than asked for: a broker's loss could lose them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(topic for topic in await admin.list_topics() if not topic.startswith("__"))
        descriptions = await admin.describe_topics(topics)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics])
    finally:
        await admin.close()
    min_isr = {
        name: int(entry[1])
        for response in configs
        for _, _, _, name, entries in response.resources
        for entry in entries
        if entry[0] == "min.insync.replicas"
    }
    notes = []
    for description in descriptions:
        topic = description["topic"]
        found = min(len(partition["replicas"]) for partition in description["partitions"])
        if found < replicas or min_isr.get(topic, 1) < min_insync:
            notes.append(f"topic {topic}: {found} replicas, min.insync.replicas={min_isr.get(topic, '?')}")
    return notes


def two_workers_kill(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Two workers share 8 partitions 4 + 4; one is SIGKILLed about 3 s into an upload and stays dead."""
    scenario = Scenario("two-workers-kill")
    files = {
        **random_files(rng, "small", intensity.two_worker_small_files, 1, 512 * KiB),
        **random_files(rng, "large", 4, 16 * MiB, 16 * MiB),
    }
    sources = campaign.work / "sources" / scenario.name
    write_sources(sources, files)
    losing_rounds = []
    for round_number in range(1, intensity.two_worker_rounds + 1):
        with campaign.pipeline(f"{scenario.name}-{round_number}", FILESTREAM_PARTITIONS="8") as pipeline:
            if not pipeline.open(("a", "b")):
                pipeline.watch(scenario)
                continue
            try:
                split = wait_for_split(pipeline.live_workers(), 8, timeout=SPLIT_TIMEOUT)
            except TimeoutError as exc:
                health = {worker.name: worker.health() for worker in pipeline.live_workers()}
                scenario.problems.append(f"round {round_number}: {exc}; health views: {health}")
                continue
            items = scenario.expect(pipeline, files)
            upload = pipeline.upload(sources, scenario.name)
            time.sleep(3.0)
            victim = rng.choice(("a", "b"))
            pipeline.kill_worker(victim)
            killed = pipeline.workers[victim].name
            log.info("round %d: %s (partitions %s) SIGKILLed", round_number, killed, split.get(killed))
            if upload.wait() != 0:
                scenario.problems.append(f"round {round_number}: the upload command failed ({upload.returncode})")
            wait_for_delivery(pipeline, scenario, intensity.stall_timeout, items)
            missing = [item.path for item in items if not delivered(pipeline, item)]
            if missing:
                losing_rounds.append(round_number)
                scenario.notes.append(
                    f"round {round_number}: {len(missing)} files not delivered after {killed} "
                    f"(partitions {split.get(killed)}) was killed; the survivor says: "
                    + "; ".join(file_report(pipeline, scenario.name, path) for path in missing[:5])
                )
    scenario.faults = (
        f"{intensity.two_worker_rounds} rounds, 2 workers on 8 partitions (4 + 4), one SIGKILLed 3 s into the "
        f"upload of {len(files)} files; rounds losing files: {len(losing_rounds)}"
        + (f" ({', '.join(map(str, losing_rounds))})" if losing_rounds else "")
    )
    return scenario


def kill_loop(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Two workers on 8 partitions, SIGKILLed in turn while uploads run, each restarted at once."""
    scenario = Scenario("kill-loop")
    files = random_files(rng, "loop", intensity.kill_loop_files, 1, MiB)
    batches = split_into(list(files.items()), intensity.kill_loop_kills)
    restarts = {True: 0, False: 0}
    with campaign.pipeline(scenario.name, FILESTREAM_PARTITIONS="8") as pipeline:
        if not pipeline.open(("a", "b")):
            pipeline.watch(scenario)
            scenario.faults = "none: the workers did not get ready"
            return scenario
        scenario.expect(pipeline, files)
        uploads = []
        for kill, batch in enumerate(batches):
            directory = campaign.work / "sources" / scenario.name / f"batch-{kill}"
            write_sources(directory, dict(batch))
            uploads.append(pipeline.upload(directory, scenario.name, tag=f"batch-{kill}"))
            time.sleep(rng.uniform(1.0, 3.0))
            victim = ("a", "b")[kill % 2]
            fresh = (kill // 2) % 2 == 0  # each worker: an empty data dir, then its own, in turn
            pipeline.kill_worker(victim)
            killed_at = time.monotonic()
            pipeline.start_worker(victim, fresh_data_dir=fresh)
            restarts[fresh] += 1
            log.info(
                "kill %d: %s restarted on %s, ready after %.1fs",
                kill + 1,
                pipeline.workers[victim].name,
                "an empty data dir" if fresh else "its data dir",
                time.monotonic() - killed_at,
            )
        for number, upload in enumerate(uploads):
            if upload.wait() != 0:
                scenario.problems.append(f"upload of batch {number} failed ({upload.returncode})")
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        missing = [item.path for item in scenario.expected if not delivered(pipeline, item)]
        if missing:
            scenario.notes.append(
                f"{len(missing)} files not delivered; the workers say: "
                + "; ".join(file_report(pipeline, scenario.name, path) for path in missing[:5])
            )
    scenario.faults = (
        f"{intensity.kill_loop_kills} SIGKILLs alternating between 2 workers on 8 partitions, during "
        f"{len(batches)} uploads of {len(files)} files; restarted on an empty data dir x{restarts[True]}, "
        f"on its own x{restarts[False]}"
    )
    return scenario
