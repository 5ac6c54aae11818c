"""``faust -A app reprocess PROCESSOR``: run a processor or reproducer again on the files it failed on.

How: the command produces one small request (the processor's name) to every partition of the
reprocess topic, which is co-partitioned with the completed-files topic; the worker that owns
partition p handles the request there (``agents/processors.py``) and re-runs the processor
on p's failed files, recording the new outcomes.

Why a control topic rather than a call to a worker's web endpoint: the outcomes live in the
workers' tables, partitioned like the files, and a partition's records can be written only
by its owner, while it processes an event of that partition.  A request on each partition
reaches exactly the owner of every partition, whichever worker that is at the moment, with
no need to know the workers' addresses; and it survives a rebalance or a worker restart,
because Kafka keeps it until it is processed.  A web request has no event, so it could not
write the table, and it would have to find and reach every worker.

The command returns once the broker has every request; the outcomes appear in
``/filestream/processors/?processor=NAME`` as the workers get to them.
"""

from __future__ import annotations

from typing import Any

import click
from faust.cli import AppCommand, argument

from agents.processors import reprocess_topic, runtimes
from app import app, kafka_security, settings
from client.kafka_security import exit_unless_brokers_accept
from commands.base import Command
from commands.config_file import config_option
from settings import PREFIX


def _registered(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in runtimes:
        raise click.BadParameter(
            f"no processor or reproducer named {value!r}; registered: {', '.join(runtimes) or 'none'} "
            f"(this command loads {PREFIX}PROCESSORS as the workers do: give it the same value)"
        )
    return value


@app.command(argument("processor_name", metavar="PROCESSOR", callback=_registered), config_option, base=Command)
async def reprocess(self: AppCommand, processor_name: str) -> Any:
    """Re-run a processor or reproducer on the files it failed on, on every worker."""
    await exit_unless_brokers_accept(settings, kafka_security, "filestream reprocess")
    # Created here too, with the right partition count, in case no worker has started yet.
    await reprocess_topic.maybe_declare()
    name = processor_name.encode("utf-8")
    for partition in range(settings.partitions):
        await (await reprocess_topic.send(key=name, value=name, partition=partition))
    self.say(
        f"requested a re-run of {processor_name}'s failed files on {settings.partitions} partitions; "
        f"outcomes: /filestream/processors/?processor={processor_name}"
    )
    await self.app.producer.stop()
