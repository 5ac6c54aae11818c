"""Records no honest uploader sends.

Corrupted, duplicated and reordered chunks; stale generations; names that climb out of the output
dir; header bombs (small records claiming absurd chunk counts).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import urllib.request
from collections import Counter
from pathlib import Path

from chaos.pipeline import Campaign, Pipeline, file_report, wait_for_delivery
from chaos.records import CORRUPTIONS, header_bomb
from chaos.scenario import Intensity, Scenario
from chaos.scenarios.workload import CHUNK, random_files
from devstack.testing import Message, as_message, as_messages, file_messages, make_chunks

# (chunk_count, index) of the header bombs.
BOMBS = ((4 * 10**7, 0), (10**9, 0), (10**12, 0), (2**32 + 2, 2**32 + 1))


def corrupted_duplicated_reordered(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Good chunks in shuffled order, some sent twice or three times, among corrupted copies and junk."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("corrupt-dup-reorder")
    files = random_files(rng, "mixed", intensity.corrupted_files, 1, 8 * CHUNK)
    scenario.expect(pipeline, files)
    good: list[Message] = []
    bad: list[Message] = []
    after_first_good: list[tuple[bytes, Message]] = []  # records only harmless once the file's state exists
    injected: dict[str, int] = dict.fromkeys(CORRUPTIONS, 0)
    duplicates = 0
    for path, data in files.items():
        for chunk in make_chunks(data, source=scenario.name, path=path, chunk_size=CHUNK, generation=1):
            copies = rng.choice((1, 1, 2, 3))
            duplicates += copies - 1
            good += [as_message(chunk)] * copies
            if rng.random() < 0.4:
                kind = rng.choice(list(CORRUPTIONS))
                injected[kind] += 1
                record = CORRUPTIONS[kind](chunk, rng)
                if kind == "contradicting header":
                    # As the first record of a file it would define the file (its hash is sound);
                    # a sender can only contradict what the worker already holds.
                    after_first_good.append((as_message(chunk)[0], record))
                else:
                    bad.append(record)
    records = good + bad
    rng.shuffle(records)
    good_values = {value for _, value in good}
    for key, record in after_first_good:
        first = next(
            index for index, (other_key, value) in enumerate(records) if other_key == key and value in good_values
        )
        records.insert(rng.randint(first + 1, len(records)), record)
    resent = rng.sample(good, k=min(len(good), 10))
    pipeline.produce(records)
    pipeline.produce(resent)  # after the files are (probably) complete
    parts = ", ".join(f"{count} {kind}" for kind, count in injected.items())
    scenario.faults = f"{len(set(good))} chunks shuffled, {duplicates + len(resent)} duplicates; {parts}"
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def stale_generations(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Older generations of a file after, around and before newer ones: the newest complete one wins."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("stale-generations")
    records: list[Message] = []
    expected: dict[str, bytes] = {}
    patterns: Counter[int] = Counter()
    for number in range(intensity.stale_files):
        path = f"versions-{number:03d}.bin"
        versions = {generation: rng.randbytes(rng.randint(CHUNK, 6 * CHUNK)) for generation in (1, 2, 3)}

        def chunks(generation: int, versions: dict[int, bytes] = versions, path: str = path) -> list[Message]:
            return as_messages(
                make_chunks(
                    versions[generation], source=scenario.name, path=path, chunk_size=CHUNK, generation=generation
                )
            )

        pattern = number % 4
        if pattern == 0:  # the older one after the newer one
            records += chunks(2) + chunks(1)
            expected[path] = versions[2]
        elif pattern == 1:  # the newer one in the middle of the older one
            older = chunks(1)
            half = len(older) // 2 or 1
            records += older[:half] + chunks(2) + older[half:]
            expected[path] = versions[2]
        elif pattern == 2:  # delivered, replaced by a newer one, then the first one again
            records += chunks(1) + chunks(2) + chunks(1)
            expected[path] = versions[2]
        else:  # a newer one complete, then part of an older one
            records += chunks(3) + chunks(2)[:1]
            expected[path] = versions[3]
        patterns[pattern] += 1
    scenario.expect(pipeline, expected)
    pipeline.produce(records)
    scenario.faults = (
        f"older after newer x{patterns[0]}, newer inside older x{patterns[1]}, "
        f"replaced then replayed x{patterns[2]}, older partial after newer x{patterns[3]}"
    )
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def hostile_paths(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Names that climb out of the output dir, and symlinks planted in it, among ordinary files."""
    pipeline = campaign.shared_pipeline()
    scenario = Scenario("hostile-paths")
    files = random_files(rng, "ordinary", 3, 1, 3 * CHUNK)
    scenario.expect(pipeline, files)
    tag = f"escape-{rng.randrange(16**8):08x}"
    names = [
        (scenario.name, f"../{tag}-1.txt"),
        (scenario.name, f"../../{tag}-2.txt"),
        (scenario.name, f"deep/../../../{tag}-3.txt"),
        (scenario.name, f"/tmp/{tag}-4.txt"),  # noqa: S108  (a hostile absolute name, never opened)
        (scenario.name, f"C:/{tag}-5.txt"),
        (scenario.name, f"..\\..\\{tag}-6.txt"),
        ("..", f"{tag}-7.txt"),
        (scenario.name, f"nul\x00/../../{tag}-8.txt"),
        (scenario.name, f"./{tag}-9.txt"),
        (scenario.name, f"{'x' * 300}/../../{tag}-10.txt"),
    ]
    # Symlinks someone with access to the output dir left there: the worker must not write through them.
    outside = campaign.work / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"must stay as it is")
    scenario.untouchable[victim] = victim.read_bytes()
    planted = pipeline.output / scenario.name
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "linked-dir").symlink_to(outside, target_is_directory=True)
    (planted / "linked-file.txt").symlink_to(victim)
    names += [(scenario.name, f"linked-dir/{tag}-11.txt"), (scenario.name, "linked-file.txt")]

    records = file_messages(files, source=scenario.name, chunk_size=CHUNK)
    for source, path in names:
        records += as_messages(make_chunks(f"{tag} was here".encode(), source=source, path=path, chunk_size=CHUNK))
        target = Path(path) if path.startswith("/") else Path(os.path.normpath(pipeline.output / source / path))
        if not target.is_relative_to(campaign.work):
            scenario.escape_paths.add(target)
    rng.shuffle(records)
    scenario.escape_root, scenario.own_folder = campaign.work, planted
    scenario.escape_names = {f"{tag}-{number}.txt" for number in range(1, 12)}
    pipeline.produce(records)
    scenario.faults = f"{len(names) - 2} hostile names, 2 planted symlinks"
    wait_for_delivery(pipeline, scenario, intensity.stall_timeout)
    return scenario


def header_bombs(campaign: Campaign, rng: random.Random, intensity: Intensity) -> Scenario:
    """Small well-formed records claiming absurd chunk counts among normal files; then a restart on an empty dir."""
    scenario = Scenario("header-bombs")
    before = random_files(rng, "before", intensity.bomb_neighbours, 1, 4 * CHUNK)
    after = random_files(rng, "after", intensity.bomb_neighbours, 1, 4 * CHUNK)
    bombs = {
        f"bomb-{number}.bin": header_bomb(scenario.name, f"bomb-{number}.bin", count, index, rng)
        for number, (count, index) in enumerate(BOMBS)
    }
    with campaign.pipeline(scenario.name) as pipeline:
        pipeline.open()
        records = file_messages(before, source=scenario.name, chunk_size=CHUNK)
        for bomb in bombs.values():
            records.insert(rng.randint(0, len(records)), bomb)
        pipeline.produce(records)
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout, scenario.expect(pipeline, before))
        # A takeover worker starts on an empty data dir: a record that kills one kills it too.
        pipeline.kill_worker()
        pipeline.start_worker(fresh_data_dir=True)
        pipeline.produce(file_messages(after, source=scenario.name, chunk_size=CHUNK))
        wait_for_delivery(pipeline, scenario, intensity.stall_timeout, scenario.expect(pipeline, after))
        pipeline.watch(scenario)
        for path in bombs:
            status, view = pipeline.file_view(scenario.name, path)
            state = (view or {}).get("assembly") or {}
            if state.get("status") in ("assembling", "completed"):
                scenario.problems.append(f"{path} accepted: {file_report(pipeline, scenario.name, path)}")
            elif status:
                scenario.notes.append(
                    f"{path}: {'no state (404)' if status == 404 else file_report(pipeline, scenario.name, path)}"
                )
        scenario.notes.append(f"rejected chunks counted by the last worker: {_rejections(pipeline)}")
    counts = ", ".join(f"{count:.0e}" if index == 0 else "2^32+2 at index 2^32+1" for count, index in BOMBS)
    scenario.faults = (
        f"{len(bombs)} header bombs (chunk_count {counts}) among {len(before)} files, a restart on an empty "
        f"data dir, {len(after)} files more"
    )
    return scenario


def _rejections(pipeline: Pipeline) -> str:
    """``filestream_chunks_rejected_total`` by reason, from the first live worker's /metrics."""
    for worker in pipeline.live_workers():
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as response:  # noqa: S310 (our worker)
                text = response.read().decode()
            found = re.findall(r'filestream_chunks_rejected_total\{reason="([^"]+)"\} ([0-9.e+]+)', text)
            return ", ".join(f"{reason} {float(value):.0f}" for reason, value in found) or "none"
    return "no worker answered"
