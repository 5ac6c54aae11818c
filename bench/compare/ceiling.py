"""The ceiling: aiokafka producing the files as plain records while a consumer reads them, nothing else."""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Queue

from bench.common import CHUNK_SIZE, MiB, ProcessStats, Workload, bench_stack, create_topic, stack_stats, topic_bytes
from bench.compare.run import TOPIC, Run, topic_groups


def _own_stats() -> ProcessStats:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ProcessStats(usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)


def produce_files(bootstrap: str, source_dir: Path, names: list[str], ready: Event, go: Event, results: Queue) -> None:
    """Child process: every file as records of up to CHUNK_SIZE bytes, acks=all, as fast as the broker takes them."""
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, max_request_size=4 * MiB
        )
        await producer.start()
        try:
            ready.set()
            go.wait()
            before = _own_stats()
            in_flight: list[asyncio.Future] = []
            for name in names:
                with (source_dir / name).open("rb") as handle:
                    while piece := handle.read(CHUNK_SIZE):
                        in_flight.append(await producer.send(TOPIC, key=name.encode(), value=piece))
                        if len(in_flight) >= 64:
                            await in_flight.pop(0)
            await asyncio.gather(*in_flight)
            results.put(("sent", time.monotonic(), _own_stats() - before))
        finally:
            await producer.stop()

    asyncio.run(produce())


def consume_records(
    bootstrap: str, partitions: int, expected: int, stall_timeout: float, ready: Event, results: Queue
) -> None:
    """Child process: read every record of the topic from the start, doing nothing with it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def consume() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * MiB,
            fetch_max_bytes=64 * MiB,
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(TOPIC, partition) for partition in range(partitions)])
            await consumer.seek_to_beginning()
            before = _own_stats()
            ready.set()
            received, last_progress = 0, time.monotonic()
            while received < expected:
                batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                count = sum(len(records) for records in batches.values())
                if count:
                    received, last_progress = received + count, time.monotonic()
                elif time.monotonic() - last_progress > stall_timeout:
                    results.put(("stalled", time.monotonic(), f"{received} of {expected} records"))
                    return
            results.put(("received", time.monotonic(), _own_stats() - before))
        finally:
            await consumer.stop()

    asyncio.run(consume())


def run_ceiling(workload: Workload, work: Path, partitions: int, broker: str, stall_timeout: float) -> Run:
    run = Run("aiokafka ceiling", ("sent", "received"), "consumer")
    with bench_stack(work / "logs", broker) as stack:
        bootstrap = stack.bootstrap_servers
        asyncio.run(create_topic(bootstrap, TOPIC, partitions))
        context = multiprocessing.get_context("spawn")
        producer_ready, consumer_ready, go = context.Event(), context.Event(), context.Event()
        results = context.Queue()
        children = [
            context.Process(
                target=consume_records,
                args=(bootstrap, partitions, workload.record_count, stall_timeout, consumer_ready, results),
            ),
            context.Process(
                target=produce_files,
                args=(bootstrap, workload.source_dir, list(workload.sizes), producer_ready, go, results),
            ),
        ]
        for child in children:
            child.start()
        try:
            if not (producer_ready.wait(60) and consumer_ready.wait(60)):
                raise RuntimeError("the aiokafka producer or consumer did not start")
            stack_before = stack_stats(stack)
            started = time.monotonic()
            go.set()
            for _ in children:
                stage, finished, detail = results.get(timeout=3600)
                if stage == "stalled":
                    run.problem = f"stalled for {stall_timeout:.0f} s at {finished - started:.0f} s: {detail}"
                    continue
                run.stages[stage] = finished - started
                run.processes["producer" if stage == "sent" else "consumer"] = detail
            run.processes["broker"] = stack_stats(stack)["broker"] - stack_before["broker"]
            if not run.problem:
                run.verdict = f"{workload.record_count}/{workload.record_count} records consumed"
        finally:
            for child in children:
                child.join(10)
                if child.is_alive():
                    child.kill()
        run.broker_bytes = topic_groups(asyncio.run(topic_bytes(bootstrap)), TOPIC)
    return run
