"""The campaign's verdict: every expected file read back from S3 and the output dir, escapes searched for; the table."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import format_table
from chaos.scenario import Scenario
from devstack.testing import s3_sha256


@dataclass
class Outcome:
    scenario: str
    faults: str
    expected: int
    delivered: int  # byte-identical in S3 and, where expected there, in the output dir
    lost: int  # missing from one place or both, wrong in neither
    corrupt: int  # wrong bytes in one place or both
    escaped: int  # written outside the output dir (or outside its source's folder in it)
    deaths: int  # workers that died on their own
    problems: int  # failed checks besides delivery (a bomb accepted, a conflict not reported, …)
    seconds: float
    notes: list[str]
    not_run: str = ""

    @property
    def ok(self) -> bool:
        if self.not_run:
            return True
        return self.delivered == self.expected and not (
            self.lost or self.corrupt or self.escaped or self.deaths or self.problems
        )


def _escaped_files(scenario: Scenario) -> Iterator[Path]:
    """Files named by the scenario's hostile records anywhere under the campaign's work dir but its source's
    folder of the output dir (another source's folder counts: a name must not reach into it either), those
    outside the work dir its names point at, and files outside the output dir that changed."""
    if scenario.escape_root is not None and scenario.own_folder is not None:
        for directory, _, files in os.walk(scenario.escape_root):
            if not Path(directory).is_relative_to(scenario.own_folder):
                yield from (Path(directory) / name for name in files if name in scenario.escape_names)
    yield from (path for path in scenario.escape_paths if path.exists())
    yield from (path for path, data in scenario.untouchable.items() if path.read_bytes() != data)


def judge(client: Any, scenario: Scenario) -> Outcome:
    """Read every expected file back from S3 and, where expected, from the output dir; look for escapes."""
    delivered = lost = corrupt = 0
    for item in scenario.expected:
        digest = hashlib.sha256(item.data).hexdigest()
        on_disk = item.disk_bytes() if item.on_disk else None
        in_s3 = s3_sha256(client, item.bucket, f"{item.source}/{item.path}")
        if (not item.on_disk or on_disk == item.data) and in_s3 == digest:
            delivered += 1
        elif (on_disk is not None and on_disk != item.data) or (in_s3 is not None and in_s3 != digest):
            corrupt += 1
        else:
            lost += 1
    escaped = list(_escaped_files(scenario))
    notes = scenario.notes + scenario.deaths + scenario.problems + [f"escaped: {path}" for path in escaped]
    return Outcome(
        scenario.name,
        scenario.faults,
        len(scenario.expected),
        delivered,
        lost,
        corrupt,
        len(escaped),
        len(scenario.deaths),
        len(scenario.problems),
        scenario.seconds,
        notes,
        scenario.not_run,
    )


def report(outcomes: list[Outcome]) -> str:
    def row(o: Outcome) -> list[object]:
        if o.not_run:
            return [o.scenario, f"not run: {o.not_run}", *("—" * 7), f"{o.seconds:.1f}"]
        figures = [o.expected, o.delivered, o.lost, o.corrupt, o.escaped, o.deaths, o.problems]
        return [o.scenario, o.faults, *figures, f"{o.seconds:.1f}"]

    table = format_table(
        [
            "scenario",
            "faults injected",
            "expected",
            "delivered byte-identical",
            "lost",
            "corrupt",
            "outside output dir",
            "worker deaths",
            "other failures",
            "seconds",
        ],
        [row(o) for o in outcomes],
        text_columns=2,
    )
    legend = (
        "delivered: byte-identical in S3 and, unless the file cannot be written there, in the output dir, read "
        "back after the last scenario; outside output dir: files written outside it, or outside the source's own "
        "folder in it; worker deaths: workers that died on their own; other failures: checks besides delivery"
    )
    notes = [f"{o.scenario}: {note}" for o in outcomes for note in o.notes]
    return "\n".join([table, legend, *notes])
