"""Files the output dir cannot take (a name taken by a file or a directory, the dir itself a file).

They must still reach S3, and show as failed with a reason in the file view.
"""

from __future__ import annotations

import functools
import random
import time

from chaos.pipeline import Campaign, Pipeline, file_report, wait_for, wait_for_delivery
from chaos.scenario import Intensity, Scenario
from chaos.scenarios.workload import CHUNK, random_files, write_sources
from devstack.testing import file_messages


def name_conflicts(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Two uploads under one source: ``x`` a file then a directory (``x/y``), ``dir`` a directory then a file."""
    scenario = Scenario("name-conflicts")
    first = {"x": rng.randbytes(999), "dir/z": rng.randbytes(1234), **random_files(rng, "first", 3, 1, 2 * CHUNK)}
    second = {"x/y": rng.randbytes(777), "dir": rng.randbytes(4321), **random_files(rng, "second", 3, 1, 2 * CHUNK)}
    conflicting = ("x/y", "dir")
    with campaign.pipeline(scenario.name) as pipeline:
        pipeline.open()
        first_items = scenario.expect(pipeline, first)
        second_items = scenario.expect(
            pipeline, {path: data for path, data in second.items() if path not in conflicting}
        )
        second_items += scenario.expect(pipeline, {path: second[path] for path in conflicting}, on_disk=False)
        for number, (files, items) in enumerate(((first, first_items), (second, second_items)), start=1):
            directory = campaign.work / "sources" / scenario.name / f"upload-{number}"
            write_sources(directory, files)
            upload = pipeline.upload(directory, scenario.name, tag=f"upload-{number}")
            if upload.wait() != 0:
                scenario.problems.append(f"upload {number} failed ({upload.returncode}):\n{upload.log_tail()}")
            wait_for_delivery(pipeline, scenario, intensity.stall_timeout, items)
        expect_reported_failed(pipeline, scenario, conflicting)
        pipeline.watch(scenario)
    scenario.faults = "x: a file, then x/y; dir/z, then dir: a file (two uploads of one source)"
    return scenario


def output_dir_is_a_file(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """The output directory is a regular file: every file fails to be written, and still reaches S3."""
    scenario = Scenario("output-dir-is-a-file")
    files = random_files(rng, "blocked", 4, 1, 3 * CHUNK)
    blocker = campaign.work / scenario.name / "output"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"a regular file where the output directory should be\n")
    with campaign.pipeline(scenario.name, FILESTREAM_OUTPUT_DIR=str(blocker)) as pipeline:
        pipeline.open()
        scenario.expect(pipeline, files, on_disk=False)
        pipeline.produce(file_messages(files, source=scenario.name, chunk_size=CHUNK))
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
        expect_reported_failed(pipeline, scenario, list(files))
        pipeline.watch(scenario)
    scenario.faults = f"FILESTREAM_OUTPUT_DIR is a regular file; {len(files)} files sent"
    return scenario


def expect_reported_failed(pipeline: Pipeline, scenario: Scenario, paths: list[str] | tuple[str, ...]) -> None:
    """Each file must show as failed, with a reason, in the file view (all of them within 30 s)."""
    deadline = time.monotonic() + 30

    def failed(path: str) -> bool:
        _, view = pipeline.file_view(scenario.name, path)
        assembly = (view or {}).get("assembly") or {}
        return assembly.get("status") == "failed" and bool(assembly.get("reason"))

    for path in paths:
        reported = wait_for(functools.partial(failed, path), max(0.0, deadline - time.monotonic()), interval=0.5)
        if reported:
            scenario.notes.append(file_report(pipeline, scenario.name, path))
        else:
            scenario.problems.append(f"not reported as failed: {file_report(pipeline, scenario.name, path)}")
