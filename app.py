"""The filestream Faust application: its settings, the app and its topics.

Run a worker with ``faust -A app worker -l info``.  Every setting comes from a
``FILESTREAM_*`` environment variable (see ``settings/`` and the README).

This module imports none of the agents, tables, commands or views: Faust finds them by
autodiscovery (``autodiscover``, below) when a worker or a command starts, the way larger
Faust projects are laid out, and they import ``app`` from here.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import faust
from faust.types import TopicT
from faust.types.auth import CredentialsT

import allocator
import transport
from client.kafka_security import KafkaClientOptions, client_options, exit_unless_brokers_accept
from logs import logging_config
from settings import SettingsError, config_file_argument, load_settings
from tables.store import STORE_URL

try:
    settings = load_settings(config_file=config_file_argument(sys.argv[1:]))
    kafka_security = client_options(settings)
except SettingsError as exc:
    # Stop before Faust starts anything; the message names the variable.
    sys.exit(f"filestream: invalid setting: {exc}")

# Before the consumer's buffers are allocated (allocator.py: measured).
allocator.fix_mmap_threshold(allocator.threshold_for(settings.max_message_bytes))

OWN_LOGGERS = ("app", "agents", "tables", "models", "client", "commands", "storage", "processors", "web", "devstack")
for _name in OWN_LOGGERS:
    logging.getLogger(_name).setLevel(settings.log_level.upper())

# The packages whose modules declare agents, tables, timers, commands and views.
DISCOVERED = ["agents", "tables", "commands", "web"]
# `faust -A app` imports this module with the working directory on sys.path for that import only
# (mode.utils.imports.cwd_in_path removes it again); autodiscovery imports the packages above
# later, from beside this file.  Appended even if present: the entry seen now may be that one.
sys.path.append(str(Path(__file__).resolve().parent))


def _dev_broker_overrides() -> dict[str, Any]:
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


# What each agent's stream may hold fetched and not yet handled: Faust counts it in events (4096
# by default), so with 1 MiB chunks a worker with a backlog could buffer gigabytes.  Measured with the
# topic filled first and one worker draining it (541 files, 737 MB, Apache Kafka): peak RSS
# 683-716 MB with Faust's default, 215-221 MB with 64 events, in the same time (29-34 s; both with
# the mmap threshold at 256 KiB, see allocator.py).
STREAM_BUFFER_BYTES = 64 * 1024**2


def stream_buffer_events(chunk_size: int) -> int:
    return max(8, STREAM_BUFFER_BYTES // chunk_size)


class FilestreamApp(faust.App):
    async def on_first_start(self) -> None:
        # Before any of Faust's clients starts: refused credentials end the worker with their reason in one line.
        await exit_unless_brokers_accept(settings, kafka_security, "filestream", group=settings.app_id)
        await super().on_first_start()

    def _on_autodiscovery_error(self, name: str) -> None:
        # Faust only logs it and goes on: a worker missing one of its agents, or a command, must not start.
        raise  # noqa: PLE0704  (venusian calls this inside its except block)


app = FilestreamApp(
    settings.app_id,
    broker=list(settings.broker),
    # The consumer is Faust's, with commits that never pass a record still in flight (transport.py).
    broker_consumer=transport.consumer_urls(settings.broker),
    broker_credentials=_broker_credentials(kafka_security),
    store=STORE_URL,
    datadir=str(settings.data_dir),
    autodiscover=DISCOVERED,
    # Not exactly_once: Kafka transactions commit their input offsets with their output, while a
    # worker holds a chunk's offset until its file is settled (README, "Exactly once?").
    processing_guarantee="at_least_once",
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    table_standby_replicas=settings.standby_replicas,
    web_enabled=settings.web_enabled,
    web_port=settings.web_port,
    web_host=settings.web_host,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=settings.heartbeat_interval,
    producer_max_request_size=settings.max_message_bytes,
    consumer_max_fetch_size=settings.max_message_bytes,
    broker_max_poll_records=64,
    # A topic created a moment before the consumer subscribes may be missing from the broker's
    # metadata then; aiokafka only looks again at its next metadata refresh, which is 5 minutes
    # by default, and until then the worker owns no partition of that topic.
    consumer_metadata_max_age_ms=5000,
    # Every step is idempotent and no offset is committed before its file is settled, so a
    # stopping worker need not drain its stream buffers (waiting for that can hang forever),
    # and a rebalance need not wait for handlers: a handler whose partition was revoked
    # writes nothing more (tables.files.ensure_assignment_current).
    stream_wait_empty=False,
    stream_buffer_maxsize=stream_buffer_events(settings.chunk_size),
    logging_config=logging_config(settings.log_format),
    **(_dev_broker_overrides() if settings.dev_broker else {}),
)
# `faust worker` overrides web_enabled with its --with-web flag (on by default): False here wins over
# it, None leaves the flag (and --without-web) in charge when the setting is true.
app.boot_strategy.enable_web = None if settings.web_enabled else False
# Faust's own pages answer without FILESTREAM_WEB_TOKEN: /table/ serves raw table values, /router/ and the
# statistics (/, /assignment/) name every worker and its partitions, /graph/ draws the service tree.  Off
# rather than guarded: web/ shows what users need of them behind the token, and the routing between workers
# uses the router's Python API (app.router.key_store, web/routing.py), not its pages.  Set here, not as App
# arguments, which Faust's APP_WEB_*_ENABLED environment variables override.  `/` then answers {"status": "OK"}.
FAUST_PAGE_SWITCHES = (
    "web_tables_enabled",
    "web_router_enabled",
    "web_stats_enabled",
    "web_graph_enabled",
    "web_metrics_enabled",
)
for _switch in FAUST_PAGE_SWITCHES:
    setattr(app.conf, _switch, False)


def file_keyed_topic(name: str) -> TopicT:
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
# FileEvent JSON (models.events), decoded by each consumer.
completed_topic = file_keyed_topic(settings.completed_topic)
# Rejected chunk records, unchanged, with the reason in their headers (agents/reassembly.py).
dead_letter_topic = file_keyed_topic(settings.dead_letter_topic)
# Ticks: a tick on partition p reaches the worker that owns p's files, and its agents may write
# p's tables.  Its key says which: the sweeps (agents/expiry.py, agents/retention.py), or the
# writing of unwritten assembly progress (agents/progress.py).
ticks_topic = file_keyed_topic(f"{settings.chunks_topic}-ticks")
SWEEP_TICK = b"tick"
PROGRESS_TICK = b"progress"
# A file's key on its partition: drive its S3 transfer now (agents/s3_transfer.py).
transfer_requests_topic = file_keyed_topic(f"{settings.chunks_topic}-s3-retries")

# Faust declares a topic when an agent subscribes to it; these are also declared at start, so a
# topic this worker only produces to is never created by a broker's auto-create with another count.
declared_at_start = [chunks_topic, completed_topic, dead_letter_topic, ticks_topic, transfer_requests_topic]


@app.task
async def declare_topics() -> None:
    for topic in declared_at_start:
        await topic.maybe_declare()
