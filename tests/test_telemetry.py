"""telemetry.py: the metrics the README documents, what the agents count, the collectors, the last minute's rates."""

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import telemetry
from tables.transfer_state import TransferState
from telemetry import RateWindow
from tests.prometheus_samples import metric_samples

README = Path(__file__).resolve().parents[1] / "README.md"


def scrape(registry: CollectorRegistry = telemetry.registry) -> dict:
    return {family.name: family for family in text_string_to_metric_families(generate_latest(registry).decode())}


def readme_metrics_table() -> dict[str, tuple[str, frozenset[str]]]:
    """Every metric family the README's table names: its type and label names."""
    section = README.read_text().split("| metric | type | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = {}
    for row in section.splitlines()[1:]:
        names, kind = row.split("|")[1:3]
        for name, labels in re.findall(r"`([a-z_]+)(?:\{([a-z_,]*)\})?`", names):
            kind = kind.strip()
            # prometheus_client's parser names a counter's family without its _total suffix.
            family = name.removesuffix("_total") if kind == "counter" else name
            documented[family] = (kind, frozenset(filter(None, labels.split(","))))
    return documented


def test_the_readme_table_lists_every_filestream_metric_with_its_type_and_labels():
    telemetry.registry.register(gauges := telemetry.PipelineGauges(lambda: telemetry.PipelineReadings()))
    try:
        families = scrape()
    finally:
        telemetry.registry.unregister(gauges)
    documented = readme_metrics_table()
    exported = {name for name in families if name.startswith("filestream_")}
    assert exported == {name for name in documented if name.startswith("filestream_")}
    for name, (kind, labels) in documented.items():
        family = families[name]
        assert family.type == kind, name
        label_names = {key for sample in family.samples for key in sample.labels} - {"le"}
        assert label_names <= labels, name


def test_counters_and_the_histogram_count_what_the_agents_report():
    before = metric_samples(generate_latest(telemetry.registry).decode())
    telemetry.chunk_received()
    telemetry.chunk_stored(1000)
    telemetry.chunk_rejected("stale")
    telemetry.file_started()
    telemetry.file_completed(1000, seconds_since_first_chunk=0.1)
    telemetry.file_completed(5, seconds_since_first_chunk=20)
    after = metric_samples(generate_latest(telemetry.registry).decode())

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after[key] - before.get(key, 0.0)

    assert grew("filestream_chunks_received_total") == 1
    assert grew("filestream_chunk_bytes_stored_total") == 1000
    assert grew("filestream_chunks_rejected_total", reason="stale") == 1
    assert grew("filestream_chunks_rejected_total", reason="bad_hash") == 0
    assert grew("filestream_files_completed_total") == 2
    assert grew("filestream_file_bytes_completed_total") == 1005
    # A value equal to a bound is counted in that bucket; 20 s lands in the 30 s bucket.
    assert grew("filestream_file_assembly_seconds_bucket", le="0.1") == 1
    assert grew("filestream_file_assembly_seconds_bucket", le="10.0") == 1
    assert grew("filestream_file_assembly_seconds_bucket", le="30.0") == 2
    assert grew("filestream_file_assembly_seconds_count") == 2
    assert grew("filestream_file_assembly_seconds_sum") == pytest.approx(20.1)
    assert telemetry.counters()["files_completed"] == after[("filestream_files_completed_total", frozenset())]
    assert (
        telemetry.counters()["chunks_rejected"]["stale"]
        == after[("filestream_chunks_rejected_total", frozenset({("reason", "stale")}))]
    )


def test_process_and_platform_collectors_report_this_process():
    families = scrape()
    rss = families["process_resident_memory_bytes"].samples[0].value
    assert 10 * 1024**2 < rss < 4 * 1024**3
    assert families["process_open_fds"].samples[0].value > 0
    assert families["python_info"].samples[0].labels["major"] == "3"


def test_pipeline_gauges_are_read_at_every_scrape_and_absent_while_tables_restore():
    readings = [
        telemetry.PipelineReadings(
            files={"assembling": 2, "completed": 7, "failed": 0},
            transfers={"valid": 7, "failed": 1},
            consumer_lag=[("chunks", 1, 5), ("chunks", 0, 0)],
        ),
        telemetry.PipelineReadings(consumer_lag=[("chunks", 0, 3)]),
    ]
    registry = CollectorRegistry()
    registry.register(telemetry.PipelineGauges(lambda: readings.pop(0)))  # describe() does not read

    first = metric_samples(generate_latest(registry).decode())
    assert first[("filestream_files", frozenset({("status", "completed")}))] == 7
    assert first[("filestream_transfers", frozenset({("state", "failed")}))] == 1
    assert first[("filestream_consumer_lag", frozenset({("topic", "chunks"), ("partition", "1")}))] == 5
    second = metric_samples(generate_latest(registry).decode())
    assert second == {("filestream_consumer_lag", frozenset({("topic", "chunks"), ("partition", "0")})): 3}


def test_faust_sensor_observes_rebalance_and_request_latencies_from_their_start():
    registry = CollectorRegistry()
    sensor = telemetry.FaustSensor(metrics=FaustMetrics.create(registry, "t"))

    class App:
        rebalancing_count = 1

    state = sensor.on_rebalance_start(App())
    state["time_start"] -= 2.0  # the rebalance began two seconds ago
    sensor.on_rebalance_return(App(), state)
    state["time_start"] -= 1.0
    sensor.on_rebalance_end(App(), state)
    request_state = {"time_start": time.monotonic() - 0.5}

    class Response:
        status = 200

    sensor.on_web_request_end(App(), None, Response(), request_state)

    samples = metric_samples(generate_latest(registry).decode())
    assert samples[("t_rebalance_done_consumer_latency_count", frozenset())] == 1
    assert samples[("t_rebalance_done_consumer_latency_sum", frozenset())] == pytest.approx(2000, abs=100)
    assert samples[("t_rebalance_done_latency_sum", frozenset())] == pytest.approx(3000, abs=100)
    assert samples[("t_total_rebalances", frozenset())] == 0  # 1 only while a rebalance is under way
    assert samples[("t_http_latency_sum", frozenset())] == pytest.approx(500, abs=100)
    assert samples[("t_http_status_codes_total", frozenset({("status_code", "200")}))] == 1


def test_memory_limit_is_the_lowest_cgroup_limit_on_the_way_up_or_the_machines_memory(tmp_path):
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    root = tmp_path / "cgroup"
    service = root / "system.slice" / "filestream-worker@a.service"
    service.mkdir(parents=True)
    (service / "memory.max").write_text("max\n")
    (root / "system.slice" / "memory.max").write_text(f"{2 * 1024**3}\n")
    membership = tmp_path / "cgroup-v2"
    membership.write_text("0::/system.slice/filestream-worker@a.service\n")
    assert telemetry.memory_limit_bytes(membership, root) == min(ram, 2 * 1024**3)

    v1 = root / "memory" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{512 * 1024**2}\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    membership.write_text("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n")
    assert telemetry.memory_limit_bytes(membership, root) == 512 * 1024**2

    membership.write_text("0::/elsewhere\n")
    assert telemetry.memory_limit_bytes(membership, root) == ram
    assert telemetry.memory_limit_bytes(tmp_path / "no-such-file", root) == ram


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


def test_faust_sensor_keeps_the_series_of_faust_s_own_sensor_across_a_rebalance():
    """The hot hooks keep their labelled series: the samples are what Faust's PrometheusMonitor gives."""

    class Task:
        pass

    class Stream:
        shortlabel = "Stream: Topic: filestream-chunks"
        task_owner = Task()

    class Table:
        name = "assemblies"

    class Message:
        time_in = None

    stream, table = Stream(), Table()

    def exercise(sensor: Any, first: TP, second: TP) -> None:  # fakes stand for what Faust passes
        sensor.on_message_in(first, 7, Message())
        sensor.on_message_in(first, 8, Message())
        sensor.on_stream_event_in(first, 8, stream, None)
        sensor.on_table_get(table, b"k")
        sensor.on_table_get(table, b"k")
        sensor.on_table_set(table, b"k", b"v")
        sensor.on_table_del(table, b"k")
        sensor.on_send_initiated(None, "filestream-chunks-completed", None, 1, 2)
        sensor.track_tp_end_offset(first, 9)
        sensor._clear_partition_related_metrics()  # at every rebalance: the topic and partition series go
        sensor.on_message_in(second, 3, Message())
        sensor.on_message_in(first, 9, Message())
        sensor.on_send_initiated(None, "filestream-chunks-completed", None, 1, 2)
        sensor.track_tp_end_offset(first, 12)

    samples = []
    for sensor_class in (PrometheusMonitor, telemetry.FaustSensor):
        registry = CollectorRegistry()
        exercise(sensor_class(metrics=FaustMetrics.create(registry, "t")), TP("chunks", 0), TP("chunks", 5))
        samples.append(metric_samples(generate_latest(registry).decode()))
    faust_samples, ours = samples
    assert ours == faust_samples
    assert ours[("t_messages_received_per_topic_total", frozenset({("topic", "chunks")}))] == 2  # since the clear
    assert ours[("t_topic_partition_end_offset", frozenset({("topic", "chunks"), ("partition", "0")}))] == 12
    assert (
        ours[("t_table_operations_total", frozenset({("table", "table.assemblies"), ("operation", "keys_retrieved")}))]
        == 2
    )
