"""Operating two workers of one pipeline: a real Prometheus scraping them, the dashboard's and the alerts' PromQL
on it, and the status and transfers commands asking one worker for both."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.processes import ManagedProcess, child_env, free_port, stop_together
from devstack.testing import (
    assigned_partitions,
    file_messages,
    is_complete_split,
    pipeline_env,
    poll,
    produce_chunks,
    wait_for_files,
)
from devstack.worker import FAUST, PROJECT_ROOT, Worker
from tests.deploy.promql import DASHBOARD, RULES, dashboard_expressions, metric_names, rule_expressions
from tests.prometheus_samples import metric_samples

pytestmark = pytest.mark.e2e

CHUNK = 16 * 1024
FILE_COUNT = 24
SCRAPE_INTERVAL = "1s"
# Series Prometheus itself adds to every target; the rest must come from the workers.
PER_TARGET_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


@dataclass
class Cluster:
    workers: list[Worker]
    prometheus_url: str
    files: dict[str, bytes]
    env: dict[str, str]

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [FAUST, "-A", "app", *args],
            env=child_env(self.env),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def query(self, expression: str) -> list[dict]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (our own Prometheus on loopback)
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expression: str) -> float | None:
        result = self.query(expression)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.prometheus_url + path, timeout=10) as response:  # noqa: S310
            return json.load(response)["data"]


def expand_ranges(text: str) -> list[int]:
    """``0-2,5`` → ``[0, 1, 2, 5]``."""
    numbers: list[int] = []
    for span in text.split(","):
        first, _, last = span.partition("-")
        numbers += range(int(first), int(last or first) + 1)
    return numbers


def prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus is missing: `./dev test` installs it (apt-get install -y prometheus)")
    return found


@pytest.fixture(scope="module")
def cluster(dev_stack, tmp_path_factory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("prometheus")
    # A long session timeout: a worker frozen by the last test stays in the group (and in the
    # other's summary) for the whole test.
    env = pipeline_env(dev_stack, base, FILESTREAM_SESSION_TIMEOUT="45", FILESTREAM_HEARTBEAT_INTERVAL="3")
    workers = [Worker(env, base / f"{name}-data", name=name).start() for name in ("a", "b")]
    port = free_port()
    config = base / "prometheus.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "filestream",
                        "static_configs": [{"targets": [w.url.removeprefix("http://") for w in workers]}],
                    }
                ],
            }
        )
    )
    server = ManagedProcess(
        "prometheus",
        [
            prometheus(),
            f"--config.file={config}",
            f"--storage.tsdb.path={base / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log_path=base / "prometheus.log",
    )
    try:
        server.wait_for_port("127.0.0.1", port, timeout=60)
        for worker in workers:
            worker.wait_ready(timeout=120)
        poll(
            lambda: is_complete_split(assigned_partitions(workers), 4),
            90,
            "the partitions to split between both workers",
        )
        files = {f"prom/{i:02d}.bin": os.urandom(CHUNK * (1 + i % 3) + i) for i in range(FILE_COUNT)}
        asyncio.run(produce_chunks(env, file_messages(files, chunk_size=CHUNK)))
        wait_for_files(Path(env["FILESTREAM_OUTPUT_DIR"]) / "lab", files, workers=workers)
        yield Cluster(workers, f"http://127.0.0.1:{port}", files, env)
    finally:
        stop_together([w.process for w in workers if w.process] + [server])


def test_prometheus_sums_completed_files_over_both_workers_and_reads_their_memory(cluster):
    def both_up() -> bool:
        return cluster.value('sum(up{job="filestream"})') == 2

    poll(both_up, 60, "Prometheus to scrape both workers")
    poll(
        lambda: cluster.value("sum(filestream_files_completed_total)") == FILE_COUNT,
        60,
        f"Prometheus's sum over both workers to reach {FILE_COUNT} completed files",
    )
    # Each worker completed some of them: the sum is over two series, not one worker's count.
    per_worker = cluster.query("filestream_files_completed_total")
    assert len(per_worker) == 2 and all(float(series["value"][1]) > 0 for series in per_worker), per_worker
    assert cluster.value("sum(filestream_file_bytes_completed_total)") == sum(map(len, cluster.files.values()))

    memory = cluster.query('process_resident_memory_bytes{job="filestream"}')
    assert sorted(series["metric"]["instance"] for series in memory) == sorted(
        w.url.removeprefix("http://") for w in cluster.workers
    )
    for series, worker in zip(
        sorted(memory, key=lambda s: s["metric"]["instance"]), sorted(cluster.workers, key=lambda w: w.url), strict=True
    ):
        rss = float(series["value"][1])
        own = int(Path(f"/proc/{worker.process.pid}/status").read_text().split("VmRSS:")[1].split()[0]) * 1024
        assert 20 * 1024**2 < rss < 4 * 1024**3
        assert abs(rss - own) < 0.5 * own, (rss, own)  # the worker's own resident memory, give or take a scrape

    # The alert rules load and evaluate on the real series without an error.
    groups = cluster.api("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing = {alert["labels"]["alertname"] for alert in cluster.api("/api/v1/alerts")["alerts"]}
    assert not firing & {"FilestreamFilesFailing", "FilestreamTransfersGivenUp", "FilestreamWorkerMissing"}, firing


def test_every_dashboard_and_alert_expression_names_only_metrics_the_workers_export(cluster):
    poll(lambda: cluster.value("sum(filestream_transfers{state='valid'})") == FILE_COUNT, 60, "every transfer valid")
    exported: set[str] = set()
    for worker in cluster.workers:
        with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:  # noqa: S310
            exported |= {name for name, _ in metric_samples(response.read().decode())}
    expressions = dashboard_expressions(json.loads(DASHBOARD.read_text())) + rule_expressions(RULES)
    assert len(expressions) >= 15
    for expression in expressions:
        unknown = metric_names(expression) - exported - PER_TARGET_SERIES
        assert not unknown, f"{expression!r} names {unknown}, which no worker exports"
        # And Prometheus itself accepts it.
        cluster.query(expression)


def test_status_shows_both_workers_from_either_and_transfers_reads_both_through_one(cluster, tmp_path):
    a, b = cluster.workers
    poll(lambda: cluster.value("sum(filestream_transfers{state='valid'})") == FILE_COUNT, 60, "every transfer valid")
    shown = cluster.command("status", "--url", b.url)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "filestream: 2 of 2 workers answering, 4 partitions"
    for worker in (a, b):
        line = next(line for line in lines if line.startswith(f"  {worker.url}  partitions "))
        assert expand_ranges(line.split()[2]) == worker.health()["assigned_partitions"], line
    assert f"FILES       assembling 0  completed {FILE_COUNT}  failed 0" in lines
    assert f"valid {FILE_COUNT}" in next(line for line in lines if line.startswith("TRANSFERS"))

    as_json = cluster.command("status", "--url", a.url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert sorted(worker["url"] for worker in summary["workers"]) == sorted([a.url, b.url])
    assert summary["files"]["completed"] == FILE_COUNT

    csv_path = tmp_path / "transfers.csv"
    dumped = cluster.command("transfers", "--csv", str(csv_path), "--url", a.url)
    assert dumped.returncode == 0, dumped.stderr
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["file_id"] for row in rows) == sorted(f"lab/{name}" for name in cluster.files)
    assert {row["partition"] for row in rows} == {"0", "1", "2", "3"}  # both workers' partitions
    assert f"total  {FILE_COUNT}" in dumped.stdout

    nobody = cluster.command("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1
    assert "NOT ANSWERING" in nobody.stdout and "is a worker running there?" in nobody.stdout


def test_status_and_transfers_fail_while_a_worker_does_not_answer(cluster, tmp_path):
    a, b = cluster.workers
    b.process.popen.send_signal(signal.SIGSTOP)  # alive, in the group, silent
    try:
        shown = cluster.command("status", "--url", a.url)
        dumped = cluster.command("transfers", "--csv", str(tmp_path / "t.csv"), "--url", a.url)
    finally:
        b.process.popen.send_signal(signal.SIGCONT)
    assert shown.returncode == 1, shown.stdout
    assert f"  {b.url}  NOT ANSWERING: " in shown.stdout
    assert shown.stdout.startswith("filestream: 1 of 2 workers answering")
    assert dumped.returncode != 0
    assert f"{b.url} does not answer" in dumped.stderr
