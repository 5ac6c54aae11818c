"""The processor agents in-process: the metadata reproducer on a completed event, and re-running a failed file."""

from __future__ import annotations

from pathlib import Path

import orjson

from app import app, settings
from models.events import FileEvent
from processors.metadata import METADATA_REPRODUCER
from processors.results import ProcessorResult, ResultStatus, result_key
from tables.processor_results import load_result
from tests.agents.in_process import running
from tests.processors.completed import completed_event

CSV = b"time,temperature\n0,20.5\n1,20.7\n"
PARTITION = 2


def metadata_result(event: FileEvent) -> ProcessorResult | None:
    return load_result(result_key(METADATA_REPRODUCER, event.file_id.key))


async def put_completed(event: FileEvent) -> None:
    async with running(app.agents[f"processor-{METADATA_REPRODUCER}"]) as agent:
        await agent.put(event.dumps(), key=event.file_id.key, partition=PARTITION)


def test_the_metadata_reproducer_records_its_outcome_and_publishes_the_metadata(run, outside, new_path):
    event = completed_event(settings.output_dir, CSV, path=new_path("readings.csv"))

    run(put_completed(event))

    result = metadata_result(event)
    assert result is not None
    assert (result.status, result.attempts, result.partition) == (ResultStatus.PROCESSED, 1, PARTITION)
    assert (result.file, result.file_hash) == (str(event.file_id), event.file_hash)
    [sent] = outside.metadata.sent
    assert sent.key == event.file_id.key
    message = orjson.loads(sent.value)
    assert (message["path"], message["size"], message["sha256"]) == (event.path, len(CSV), event.file_hash)
    assert message["content_type"] == "text/csv"


def test_a_file_missing_from_the_output_dir_fails_and_a_reprocess_request_runs_it_again(run, outside, new_path):
    event = completed_event(settings.output_dir, CSV, path=new_path("late.csv"))
    assert event.output_path is not None
    output = Path(event.output_path)
    output.unlink()  # removed from the output directory before the processor runs

    run(put_completed(event))

    failed = metadata_result(event)
    assert failed is not None and failed.status is ResultStatus.FAILED
    assert failed.reason == f"output file {event.output_path} does not exist"
    assert outside.metadata.sent == []

    output.write_bytes(CSV)

    async def reprocess() -> None:
        async with running(app.agents["processor-reprocess"]) as agent:
            await agent.put(METADATA_REPRODUCER.encode(), key=None, partition=PARTITION)

    run(reprocess())

    result = metadata_result(event)
    assert result is not None and (result.status, result.attempts) == (ResultStatus.PROCESSED, 2)
    assert [sent.key for sent in outside.metadata.sent] == [event.file_id.key]
