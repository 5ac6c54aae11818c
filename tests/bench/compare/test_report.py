"""bench.compare's report: a stalled or failed system shows as such, the figures compare what was reached."""

from __future__ import annotations

from pathlib import Path

from bench.common import ProcessStats, Workload
from bench.compare.report import figures, report, write_chart
from bench.compare.run import Run

MB = 10**6


def workload(tmp_path: Path) -> Workload:
    return Workload({"a.bin": 60 * MB, "b.bin": 40 * MB}, tmp_path, {"a.bin": "0" * 64, "b.bin": "1" * 64})


def runs() -> list[Run]:
    filestream = Run(
        "filestream",
        ("sent", "received", "in_s3"),
        "worker",
        stages={"sent": 4.0, "received": 5.0, "in_s3": 6.0},
        processes={"worker": ProcessStats(300 * MB, 2.5)},
        broker_bytes={"upload": 100 * MB, "changelogs": 100 * MB, "events": 1 * MB},
    )
    openmsistream = Run(
        "OpenMSIStream 1.8.8",
        ("received",),
        "downloader",
        processes={"downloader": ProcessStats(80 * MB, 1.0)},
        problem="stalled for 60 s at 75 s",
        broker_bytes={"upload": 100 * MB, "changelogs": 0, "events": 0},
    )
    ceiling = Run("aiokafka ceiling", ("sent", "received"), "consumer", stages={"sent": 1.0, "received": 2.0})
    return [filestream, openmsistream, ceiling]


def test_figures_compare_what_each_system_reached(tmp_path: Path) -> None:
    rows = {row[0]: row[1:] for row in figures(workload(tmp_path), runs())}
    assert rows["on disk: throughput ÷ OpenMSIStream 1.8.8's"] == ["—", "—", "—"]  # it stalled
    assert rows["on disk: throughput ÷ the aiokafka ceiling's (consumed)"] == ["40 %", "—", "100 %"]
    assert rows["valid in S3, last file: time ÷ time of the last file on disk"] == ["1.20", "—", "—"]
    assert rows["receiving process: CPU-seconds per GB delivered"][0] == "25.0 s (worker)"
    assert rows["bytes the broker received per payload byte"][:2] == [
        "2.01 (upload 1.00 + changelogs 1.00 + events 0.01)",
        "1.00 (upload 1.00)",
    ]
    assert rows["receiving process: peak RSS"][:2] == ["300 MB (worker)", "80 MB (downloader)"]


def test_a_stalled_system_is_reported_with_what_it_reached(tmp_path: Path) -> None:
    text = report(workload(tmp_path), runs(), 8, "kafka", 0.5)
    on_disk = next(line for line in text.splitlines() if line.startswith("on disk (ceiling: consumed)"))
    assert "not reached" in on_disk and "20.0 MB/s" in on_disk
    assert "OpenMSIStream 1.8.8: stalled for 60 s at 75 s" in text
    assert "broker: kafka" in text


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    chart = tmp_path / "compare.png"
    write_chart(workload(tmp_path), runs(), "kafka", chart)
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
