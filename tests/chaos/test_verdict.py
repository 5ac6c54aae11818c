"""The campaign's verdict: read back from the output dir and S3, a file is delivered, lost or corrupt."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from chaos.scenario import Expected, Scenario
from chaos.verdict import judge


class NoSuchKey(Exception):
    pass


class NoSuchBucket(Exception):
    pass


class FakeS3:
    """get_object over a dict, raising what boto3 raises for a missing key."""

    exceptions = SimpleNamespace(NoSuchKey=NoSuchKey, NoSuchBucket=NoSuchBucket)

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict:  # boto3's argument names
        if (Bucket, Key) not in self.objects:
            raise NoSuchKey(Key)
        body = io.BytesIO(self.objects[(Bucket, Key)])
        return {"Body": SimpleNamespace(iter_chunks=lambda size: iter(lambda: body.read(size), b""))}


def scenario_with(tmp_path: Path, on_disk: dict[str, bytes], expected: dict[str, tuple[bytes, bool]]) -> Scenario:
    for path, data in on_disk.items():
        (tmp_path / "src" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / path).write_bytes(data)
    scenario = Scenario("src")
    scenario.expected = [
        Expected(tmp_path, "bucket", "src", path, data, disk) for path, (data, disk) in expected.items()
    ]
    return scenario


def test_delivered_lost_and_corrupt(tmp_path: Path) -> None:
    scenario = scenario_with(
        tmp_path,
        on_disk={"good": b"good", "wrong-on-disk": b"bad!", "only-on-disk": b"half"},
        expected={
            "good": (b"good", True),
            "wrong-on-disk": (b"good", True),
            "only-on-disk": (b"half", True),
            "nowhere": (b"gone", True),
        },
    )
    s3 = FakeS3({("bucket", "src/good"): b"good", ("bucket", "src/wrong-on-disk"): b"good"})
    outcome = judge(s3, scenario)
    assert (outcome.expected, outcome.delivered, outcome.lost, outcome.corrupt) == (4, 1, 2, 1)
    assert not outcome.ok


def test_a_file_that_cannot_be_on_disk_is_delivered_by_s3_alone(tmp_path: Path) -> None:
    scenario = scenario_with(tmp_path, on_disk={"x": b"a file"}, expected={"x/y": (b"under x", False)})
    outcome = judge(FakeS3({("bucket", "src/x/y"): b"under x"}), scenario)
    assert (outcome.delivered, outcome.lost, outcome.corrupt) == (1, 0, 0) and outcome.ok


def test_a_death_or_a_failed_check_fails_the_scenario(tmp_path: Path) -> None:
    scenario = scenario_with(tmp_path, on_disk={"a": b"1"}, expected={"a": (b"1", True)})
    scenario.problems.append("not reported as failed: a")
    outcome = judge(FakeS3({("bucket", "src/a"): b"1"}), scenario)
    assert outcome.delivered == 1 and outcome.problems == 1 and not outcome.ok
    assert "not reported as failed: a" in outcome.notes


def test_a_scenario_not_run_is_not_a_failure(tmp_path: Path) -> None:
    scenario = Scenario("broker-kill", not_run="needs Kafka")
    assert judge(FakeS3({}), scenario).ok
