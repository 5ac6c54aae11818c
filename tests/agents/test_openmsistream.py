"""The OpenMSIStream intake agent in-process: records re-keyed by file identity into the chunk topic."""

from __future__ import annotations

from app import app, settings
from tests.agents.in_process import running
from tests.models.test_openmsistream import omsi_fields, pack


def test_records_go_on_to_the_chunk_topic_under_their_file_identity_and_bad_ones_are_dropped(run, outside):
    records = [pack(omsi_fields(chunk_i=i)) for i in (1, 2)]
    not_a_record = pack(["scan.csv", "too few fields"])

    async def scenario() -> None:
        async with running(app.agents["openmsistream-intake"]) as agent:
            await agent.put(records[0], key=b"run7/raw_scan.csv_chunk_1_of_3", partition=0)
            await agent.put(not_a_record, key=b"whatever", partition=1)
            await agent.put(records[1], key=b"run7/raw_scan.csv_chunk_2_of_3", partition=2)

    run(scenario())

    file_key = f"{settings.openmsistream_source}/run7/raw/scan.csv".encode()
    assert [(sent.key, sent.value, sent.partition) for sent in outside.chunks.sent] == [
        (file_key, records[0], None),  # the chunk topic's partitioner places it by the file identity
        (file_key, records[1], None),
    ]
