"""The web views, the dashboard and /metrics of real workers: routing between two workers, the token, Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from devstack.testing import (
    as_messages,
    file_messages,
    make_chunks,
    poll,
    produce_chunks,
    produce_paced,
    wait_for_files,
)
from tests.prometheus_samples import metric_samples

pytestmark = pytest.mark.e2e

CHUNK = 16 * 1024
TOKEN = "s3cret-t0ken"
# Reserved and non-ASCII characters: the per-file view's URL must carry them through the routing hop.
ODD_NAMES = ["odd/with space.txt", "odd/100% sure #1?.bin", "odd/été/naïve.csv", "odd/a+b=c&d.dat"]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310  (a test worker's http URL)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    status, body = get(url, headers)
    return status, json.loads(body)


def file_url(worker, name: str) -> str:
    return f"{worker.url}/filestream/file/lab/{quote(name)}"


def scrape(worker, headers: dict[str, str] | None = None):
    status, body = get(f"{worker.url}/metrics", headers)
    assert status == 200, body[:300]
    return metric_samples(body.decode())


def total(samples_per_worker, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return sum(samples.get(key, 0.0) for samples in samples_per_worker)


def test_any_worker_answers_about_any_file_and_metrics_count_what_flowed(start_worker, pipeline):
    files = {name: os.urandom(3 * CHUNK + 100) for name in ODD_NAMES}
    files.update({f"many/{i:02d}.bin": os.urandom(1000 + i) for i in range(12)})
    retried = make_chunks(os.urandom(2 * CHUNK), path="retried/after-bad-hash.bin", chunk_size=CHUNK)
    tampered = retried[1].derive(payload=b"X" * CHUNK)
    a, b = start_worker("a"), start_worker("b")
    a.wait_ready(timeout=120)
    b.wait_ready(timeout=120)
    poll(
        lambda: sorted(a.health()["assigned_partitions"] + b.health()["assigned_partitions"]) == [0, 1, 2, 3],
        90,
        "the partitions to split between both workers",
    )
    partitions = {a.url: set(a.health()["assigned_partitions"]), b.url: set(b.health()["assigned_partitions"])}

    messages = file_messages(files, chunk_size=CHUNK) + [(b"lab/garbage", b"not a chunk record")]
    messages += as_messages([retried[0], tampered, retried[1]])
    asyncio.run(produce_chunks(pipeline, messages))
    files["retried/after-bad-hash.bin"] = b"".join(c.payload for c in retried)
    wait_for_files(Path(pipeline["FILESTREAM_OUTPUT_DIR"]) / "lab", files, workers=[a, b])

    def all_transferred() -> bool:
        answers = [get_json(file_url(a, name))[1] for name in files]
        return all(answer["transfer"] and answer["transfer"]["state"] == "valid" for answer in answers)

    poll(all_transferred, 60, "every file's S3 transfer to be valid, asked through worker a")
    owners = {}
    for name in files:
        for asked in (a, b):
            status, answer = get_json(file_url(asked, name))
            assert status == 200, answer
            assert answer["file"] == f"lab/{name}"
            assert answer["assembly"]["status"] == "completed"
            assert answer["transfer"]["size"] == len(files[name])
            assert [r["processor"] for r in answer["processors"]] == ["metadata"]
            # Whoever was asked, the owner of the file's partition answered.
            assert answer["assembly"]["partition"] in partitions[answer["worker"]]
            owners.setdefault(name, answer["worker"])
            assert answer["worker"] == owners[name]
    assert set(owners.values()) == {a.url, b.url}, "each worker must own some of the files"

    assert get_json(file_url(b, "no/such/file.bin"))[0] == 404
    assert get_json(f"{a.url}/filestream/file/bad%20source/x.txt")[0] == 400
    assert get(f"{a.url}/table/")[0] == 404, "Faust's table views would serve raw payloads"

    status, summary = get_json(f"{b.url}/filestream/summary/")
    assert status == 200
    assert sorted(w["url"] for w in summary["workers"]) == sorted([a.url, b.url])
    assert summary["files"]["completed"] == len(files)
    assert summary["transfers"]["valid"] == len(files)
    assert summary["counters"]["chunks_rejected"]["malformed"] == 1
    status, page = get_json(f"{a.url}/filestream/files/?status=completed&order=recent&limit=2")
    assert page["limit"] == 2 and len(page["files"]) == 2 and page["next_offset"] == 2
    assert page["files"][0]["finished_at"] >= page["files"][1]["finished_at"]

    scraped = [scrape(a), scrape(b)]
    assert total(scraped, "filestream_files_completed_total") == len(files)
    assert total(scraped, "filestream_files_started_total") == len(files)
    assert total(scraped, "filestream_file_assembly_seconds_count") == len(files)
    assert total(scraped, "filestream_chunks_rejected_total", reason="malformed") == 1
    assert total(scraped, "filestream_chunks_rejected_total", reason="bad_hash") == 1
    assert total(scraped, "filestream_chunks_received_total") == len(messages)
    assert total(scraped, "filestream_chunk_bytes_stored_total") == sum(map(len, files.values()))
    assert total(scraped, "filestream_files", status="completed") == len(files)
    assert total(scraped, "filestream_transfers", state="valid") == len(files)
    assert total(scraped, "filestream_transfer_outcomes_total", outcome="valid") == len(files)

    def chunk_topic_lags() -> list[float]:
        # A partition has a lag once its worker committed on it; Faust commits every few seconds.
        return [
            value
            for samples in (scrape(a), scrape(b))
            for (name, labels), value in samples.items()
            if name == "filestream_consumer_lag" and ("topic", pipeline["FILESTREAM_CHUNKS_TOPIC"]) in labels
        ]

    poll(lambda: chunk_topic_lags() == [0] * 4, 30, "every chunk partition's lag to be known and caught up")

    # While the owner is dead, and while the survivor restores its partitions: 503, never 500.
    owned_by_b = next(name for name, owner in owners.items() if owner == b.url)
    b.kill()
    statuses = []

    def answered_by_a() -> bool:
        status, answer = get_json(file_url(a, owned_by_b))
        statuses.append(status)
        return status == 200 and answer["worker"] == a.url

    poll(answered_by_a, 90, "worker a to take over and answer for b's file")
    assert set(statuses[:-1]) <= {503}, statuses


class DashboardDom(HTMLParser):
    """Text of the elements with an id, and the rows of each table body, from Chromium's DOM dump."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.states: dict[str, int] = {}
        self._open: list[tuple[str, str | None]] = []
        self._tbody: str | None = None
        self._state: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("meta", "br", "input", "img", "link"):
            return
        self._open.append((tag, attrs.get("id")))
        if attrs.get("id"):
            self.text[attrs["id"]] = ""
        if tag == "tbody":
            self._tbody = attrs.get("id")
            self.rows[self._tbody] = []
        elif tag == "tr" and self._tbody:
            self.rows[self._tbody].append([])
        elif tag == "td" and self._tbody:
            self.rows[self._tbody][-1].append("")
        elif tag == "li" and "data-state" in attrs:
            self._state = attrs["data-state"]

    def handle_endtag(self, tag):
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break
        if tag == "tbody":
            self._tbody = None
        elif tag == "li":
            self._state = None

    def handle_data(self, data):
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] += data
        if self._tbody and self._open and self._open[-1][0] == "td":
            self.rows[self._tbody][-1][-1] += data
        if self._state and self._open and self._open[-1][0] == "span":
            self.states[self._state] = int(data)

    def first_column(self, tbody: str) -> list[str]:
        return [row[0] for row in self.rows.get(tbody, []) if row]


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: `./dev test` installs it (apt-get install -y chromium)")
    return found


def render_dashboard(url: str, profile: Path) -> DashboardDom:
    """The dashboard's DOM after its script fetched and rendered the summary, in headless Chromium."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # Virtual time runs the page's timers without waiting; fetches still go to the worker.
        "--virtual-time-budget=3000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return DashboardDom(result.stdout)


def test_token_guards_the_views_and_the_dashboard_shows_the_pipeline_in_chromium(start_worker, pipeline, tmp_path):
    worker = start_worker(env={**pipeline, "FILESTREAM_WEB_TOKEN": TOKEN})
    worker.wait_ready()  # the health view needs no token
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in (
        "/filestream/files/",
        "/filestream/summary/",
        "/filestream/dashboard/",
        "/metrics",
        "/filestream/file/lab/x",
    ):
        assert get(worker.url + path)[0] == 401, path
        assert get(worker.url + path, {"Authorization": "Bearer wrong"})[0] == 401, path
    assert get(worker.url + "/filestream/files/", bearer)[0] == 200
    assert get(worker.url + f"/filestream/files/?token={TOKEN}")[0] == 200
    assert get(worker.url + "/metrics", bearer)[0] == 200

    completed = {f"flow/{i:02d}.bin": os.urandom(CHUNK * (1 + i % 3)) for i in range(30)}
    partial = {f"stuck/{i}.bin": os.urandom(8 * CHUNK) for i in range(3)}
    broken = make_chunks(os.urandom(2 * CHUNK), path="broken/wrong-hash.bin", chunk_size=CHUNK)
    broken = [chunk.derive(file_hash="0" * 64) for chunk in broken]
    messages = file_messages(completed, chunk_size=CHUNK)
    messages += as_messages(
        [c for name, data in partial.items() for c in make_chunks(data, path=name, chunk_size=CHUNK)[:3]]
    )
    messages += as_messages(broken)
    batches = [messages[i : i + 8] for i in range(0, len(messages), 8)]
    producer = produce_paced(pipeline, batches, pause=0.3)

    dashboard = f"{worker.url}/filestream/dashboard/?token={TOKEN}"
    during = poll(
        lambda: (
            (dom := render_dashboard(dashboard, tmp_path / "chromium")).text["count-completed"] not in ("–", "0")
            and dom
        ),
        60,
        "the dashboard to show completed files while they flow",
    )
    assert during.text["status"].startswith("updated"), during.text["status"]
    producer.join()

    def settled():
        dom = render_dashboard(dashboard, tmp_path / "chromium")
        done = dom.text["count-completed"] == str(len(completed)) and dom.states.get("valid") == len(completed)
        # The marks of a file's last chunks are written within two seconds (tables/assembler.py).
        marked = all(row[3] == "3 / 8" for row in dom.rows["in-flight"])
        return done and marked and dom.text["count-failed"] == "1" and dom

    dom = poll(settled, 60, "the dashboard to show every file completed, transferred or partly received")
    assert dom.text["count-in-flight"] == str(len(partial))
    in_flight = {row[0]: row for row in dom.rows["in-flight"]}
    assert sorted(in_flight) == [f"lab/{name}" for name in sorted(partial)]
    assert all(row[3] == "3 / 8" for row in in_flight.values())
    failures = {row[0]: row for row in dom.rows["failures"]}
    assert "file hash mismatch" in failures["lab/broken/wrong-hash.bin"][2]
    assert set(dom.first_column("recent")) <= {f"lab/{name}" for name in completed}
    assert len(dom.first_column("recent")) == 20
    assert float(dom.text["throughput-files"]) > 0
    assert dom.states["failed"] == 0 and sum(dom.states.values()) == len(completed)
    assert worker.url in dom.text["workers"]


BAD_PAGING = [
    ("offset=99999999999999999999", "offset"),  # a 500 before: beyond what the JSON answer can carry
    ("offset=-5", "offset"),
    ("offset=1e3", "offset"),
    ("limit=abc", "limit"),
    ("limit=0", "limit"),
    ("limit=99999999999999999999", "limit"),
]
BAD_FILTERS = [
    ("/filestream/files/", "status=bogus", "status"),
    ("/filestream/files/", "order=newest", "order"),
    ("/filestream/transfers/", "state=nope", "state"),
    ("/filestream/processors/", "processor=metadata&status=done", "status"),
    ("/filestream/summary/", "scope=everyone", "scope"),
]


def test_bad_query_parameters_answer_400_and_faust_pages_are_off(start_worker, pipeline):
    # Faust's own switches, as an operator might set them: Faust lets them override App arguments.
    faust_pages_on = {f"APP_WEB_{page}_ENABLED": "true" for page in ("TABLES", "ROUTER", "STATS", "GRAPH", "METRICS")}
    worker = start_worker(env={**pipeline, **faust_pages_on})
    worker.wait_ready()
    lists = ("/filestream/files/", "/filestream/transfers/", "/filestream/processors/")
    refused = [(path, query, parameter) for path in lists for query, parameter in BAD_PAGING] + BAD_FILTERS
    for path, query, parameter in refused:
        status, answer = get_json(f"{worker.url}{path}?{query}")
        assert (status, answer["parameter"]) == (400, parameter), (path, query, answer)
        assert answer["error"].startswith(f"{parameter}: expected "), answer
    for path in lists:
        status, answer = get_json(f"{worker.url}{path}?offset=9223372036854775807&limit=5000")
        assert status == 200, (path, answer)
        assert (answer["offset"], answer["limit"], answer["total"]) == (9223372036854775807, 1000, 0)
    assert get_json(f"{worker.url}/filestream/summary/?scope=worker")[0] == 200

    # Faust's pages: raw table values, the router's map of workers and partitions, statistics, the service graph.
    for path in ("/table/", "/router/", "/router/topics", "/assignment/", "/graph/", "/performance/"):
        assert get(worker.url + path)[0] == 404, path
    assert get_json(worker.url + "/") == (200, {"status": "OK"})
