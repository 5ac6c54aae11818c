"""What a scenario is given (how hard to hit) and what it records: the files it expects, its faults, what went wrong."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from settings import Settings


class Destination(Protocol):
    """Where a scenario's files must arrive: what it reads of a chaos.pipeline.Pipeline."""

    output: Path
    settings: Settings


@dataclass(frozen=True)
class Intensity:
    """How hard the campaign hits: the quick one runs in the test suite, the long one by hand."""

    worker_kills: int
    worker_kill_files: int
    s3_outages: int
    s3_outage_seconds: tuple[float, float]
    uploader_kills: int
    uploader_files: int
    corrupted_files: int
    stale_files: int
    stall_timeout: float
    broker_kill_files: int
    broker_down_seconds: float
    two_worker_rounds: int  # rounds of two-workers-kill, each on a pipeline of its own
    two_worker_small_files: int  # besides four of 16 MiB
    kill_loop_kills: int
    kill_loop_files: int
    s3_down_seconds: float  # S3 stays down this long after the files are on disk
    bomb_neighbours: int  # normal files sent with the header bombs, and again after the restart


QUICK = Intensity(
    worker_kills=1,
    worker_kill_files=24,
    s3_outages=1,
    s3_outage_seconds=(2.0, 4.0),
    uploader_kills=1,
    uploader_files=24,
    corrupted_files=20,
    stale_files=8,
    stall_timeout=60.0,
    broker_kill_files=30,
    broker_down_seconds=10.0,
    two_worker_rounds=1,
    two_worker_small_files=196,
    kill_loop_kills=4,
    kill_loop_files=160,
    s3_down_seconds=3.0,
    bomb_neighbours=8,
)
LONG = Intensity(
    worker_kills=6,
    worker_kill_files=160,
    s3_outages=3,
    s3_outage_seconds=(3.0, 20.0),
    uploader_kills=4,
    uploader_files=120,
    corrupted_files=120,
    stale_files=40,
    stall_timeout=180.0,
    broker_kill_files=120,
    broker_down_seconds=30.0,
    two_worker_rounds=5,  # a fault that strikes one round in two goes unseen with probability 1/32
    two_worker_small_files=196,
    kill_loop_kills=12,
    kill_loop_files=640,
    s3_down_seconds=20.0,
    bomb_neighbours=24,
)


@dataclass(frozen=True)
class Expected:
    """One file a pipeline must deliver: in S3, and in its output directory unless ``on_disk`` is False."""

    output_dir: Path
    bucket: str
    source: str
    path: str
    data: bytes
    on_disk: bool = True

    def disk_bytes(self) -> bytes | None:
        try:
            return (self.output_dir / self.source / self.path).read_bytes()
        except OSError:  # missing, or a directory / a file in the way
            return None


@dataclass
class Scenario:
    name: str  # also the source name of its files
    faults: str = ""
    expected: list[Expected] = field(default_factory=list)
    escape_root: Path | None = None  # hostile names: searched for under it, outside own_folder
    own_folder: Path | None = None
    escape_names: set[str] = field(default_factory=set)
    escape_paths: set[Path] = field(default_factory=set)  # places outside the work dir hostile names point at
    untouchable: dict[Path, bytes] = field(
        default_factory=dict
    )  # files outside the output dir that must keep their bytes
    seconds: float = 0.0
    deaths: list[str] = field(default_factory=list)  # workers that died on their own, with what their logs said
    problems: list[str] = field(default_factory=list)  # checks other than delivery that failed
    notes: list[str] = field(default_factory=list)  # evidence and remarks
    not_run: str = ""  # why the scenario could not run on this stack

    def expect(self, pipeline: Destination, files: Mapping[str, bytes], *, on_disk: bool = True) -> list[Expected]:
        items = [
            Expected(pipeline.output, pipeline.settings.s3_bucket, self.name, path, data, on_disk)
            for path, data in files.items()
        ]
        self.expected += items
        return items
