"""The filestream Faust application: settings, topics, tables, agents, commands and web views.

Run a worker with ``faust -A app worker -l info``.  Every setting comes from a
``FILESTREAM_*`` environment variable (see ``settings.py`` and the README).
"""

from __future__ import annotations

import logging
import sys

import faust
from faust.types.auth import CredentialsT

from client.kafka_security import KafkaClientOptions, client_options, exit_unless_brokers_accept
from settings import SettingsError, config_file_argument, load_settings
from tables.store import STORE_URL

try:
    settings = load_settings(config_file=config_file_argument(sys.argv[1:]))
    kafka_security = client_options(settings)
except SettingsError as exc:
    # Stop before Faust starts anything; the message names the variable.
    sys.exit(f"filestream: invalid setting: {exc}")

OWN_LOGGERS = ("app", "agents", "tables", "models", "client", "commands", "storage", "processors", "web", "devstack")
for _name in OWN_LOGGERS:
    logging.getLogger(_name).setLevel(settings.log_level.upper())


def _dev_broker_overrides() -> dict:
    """Settings that work around the Tansu development broker's gaps; never used against Kafka.

    - One record per producer batch: Tansu's ListOffsets(latest) answers the base offset of the
      newest batch + 1, which Faust uses as its changelog recovery target; with single-record
      batches that is the true end offset.
    """
    return {"producer_max_batch_size": 1}


def _broker_credentials(options: KafkaClientOptions) -> CredentialsT | None:
    """The security of the plain aiokafka clients (client/kafka_security.py), as Faust takes it."""
    if "sasl_mechanism" in options:  # with an ssl_context Faust speaks SASL_SSL, without it SASL_PLAINTEXT
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    return faust.SSLCredentials(options["ssl_context"]) if "ssl_context" in options else None


class FilestreamApp(faust.App):
    async def on_first_start(self) -> None:
        # Before any of Faust's clients starts: refused credentials end the worker with their reason in one line.
        await exit_unless_brokers_accept(settings, kafka_security, "filestream", group=settings.app_id)
        await super().on_first_start()


app = FilestreamApp(
    settings.app_id,
    broker=list(settings.broker),
    broker_credentials=_broker_credentials(kafka_security),
    store=STORE_URL,
    datadir=str(settings.data_dir),
    autodiscover=False,
    processing_guarantee="at_least_once",
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    web_enabled=settings.web_enabled,
    web_port=settings.web_port,
    web_host=settings.web_host,
    web_tables_enabled=False,  # Faust's /table/ views serve raw table values: the payloads are file contents
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=settings.heartbeat_interval,
    producer_max_request_size=settings.max_message_bytes,
    consumer_max_fetch_size=settings.max_message_bytes,
    broker_max_poll_records=64,
    # Every step is idempotent and offsets are committed only for processed events, so a
    # stopping worker need not drain its stream buffers (waiting for that can hang forever).
    stream_wait_empty=False,
    **(_dev_broker_overrides() if settings.dev_broker else {}),
)
# `faust worker` overrides web_enabled with its --with-web flag (on by default): False here wins over
# it, None leaves the flag (and --without-web) in charge when the setting is true.
app.boot_strategy.enable_web = None if settings.web_enabled else False


def file_keyed_topic(name: str):
    """A topic of raw bytes keyed by file identity, partitioned like the chunk topic.

    Same partition count, so Faust assigns partition p of every such topic (and of every
    table's changelog) to the worker that owns partition p of the chunk topic.
    internal=True: the worker creates the topic with that count before it subscribes (a
    broker that auto-creates topics would otherwise pick its own count).
    """
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
        config=settings.topic_configs,
    )


chunks_topic = file_keyed_topic(settings.chunks_topic)
# FileEvent JSON, decoded by each consumer (models.events.decode_event)
completed_topic = file_keyed_topic(settings.completed_topic)
# Expiry ticks (agents/expiry.py): a tick on partition p reaches the worker that owns p's files.
ticks_topic = file_keyed_topic(f"{settings.chunks_topic}-ticks")

# Faust declares a topic when an agent subscribes to it; these are also declared at start, so a
# topic this worker only produces to is never created by a broker's auto-create with another count.
declared_at_start = [chunks_topic, completed_topic, ticks_topic]


@app.task
async def declare_topics() -> None:
    for topic in declared_at_start:
        await topic.maybe_declare()


@app.page("/filestream/health/")
async def health(web, request):
    """Readiness for load balancers and test harnesses: ready once partitions are assigned and tables restored."""
    try:
        assignment = app.consumer.assignment()
    except Exception:  # the consumer is not started yet; nothing is assigned
        assignment = set()
    assigned = sorted(tp.partition for tp in assignment if tp.topic == settings.chunks_topic)
    recovering = bool(app.in_recovery)
    rebalancing = bool(app.rebalancing)
    return web.json(
        {
            "ready": bool(assignment) and not recovering and not rebalancing,
            "app_id": settings.app_id,
            "recovering": recovering,
            "rebalancing": rebalancing,
            "assigned_partitions": assigned,
        }
    )


# Registration: agents, tables and commands attach themselves to `app` on import.
import agents.reassembly  # noqa: E402,F401

if settings.openmsistream_topic:
    import agents.openmsistream  # noqa: E402,F401  (re-keys OpenMSIStream chunks into the chunk topic)
import agents.expiry  # noqa: E402,F401
import agents.processors  # noqa: E402,F401  (FILESTREAM_PROCESSORS, the metadata reproducer: an agent each)
import agents.s3_transfer  # noqa: E402,F401
import commands.download  # noqa: E402,F401  (registers the download command)
import commands.reprocess  # noqa: E402,F401  (registers the reprocess command)
import commands.transfers  # noqa: E402,F401  (registers the transfers command)
import commands.upload  # noqa: E402,F401  (registers the upload command)
import web.views  # noqa: E402,F401  (views, dashboard, /metrics unless FILESTREAM_VIEWS_ENABLED=false)
