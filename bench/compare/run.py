"""What a run of one system records, and the topic the compared systems other than filestream share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.common import ProcessStats

TOPIC = "bench-chunks"


@dataclass
class Run:
    system: str
    stages_measured: tuple[str, ...]  # the stages of STAGES this system has
    consumer: str  # the process that receives: its CPU per GB and peak RSS are compared
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds from the start
    processes: dict[str, ProcessStats] = field(default_factory=dict)
    verdict: str = ""
    problem: str = ""  # "stalled …" or "failed: …": the stages not reached were never reached
    broker_bytes: dict[str, int] = field(default_factory=dict)  # upload / changelogs / events → bytes


def topic_groups(sizes: Mapping[str, int], upload_topic: str) -> dict[str, int]:
    """Bytes per kind of topic: what the uploader wrote, the tables' changelogs, and every other topic."""
    groups = {"upload": 0, "changelogs": 0, "events": 0}
    for topic, size in sizes.items():
        kind = "upload" if topic == upload_topic else "changelogs" if topic.endswith("-changelog") else "events"
        groups[kind] += size
    return groups
