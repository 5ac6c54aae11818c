"""Every ``FILESTREAM_*`` variable: its default, its parser and what it means; the README's table of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from logs import LOG_FORMATS
from models.identity import validate_source
from settings.values import (
    CHUNK_CODECS,
    LOG_LEVELS,
    PREFIX,
    Secret,
    one_of,
    parse_bool,
    parse_broker_urls,
    parse_chunk_size,
    parse_file_size,
    parse_module_names,
    parse_multipart_threshold,
    parse_name,
    parse_optional_path,
    parse_optional_topic,
    parse_part_size,
    parse_partitions,
    parse_port,
    parse_replicas,
    parse_retention_days,
    parse_s3_parallelism,
    parse_s3_retries,
    parse_sasl_mechanism,
    parse_seconds,
    parse_security_protocol,
    parse_standby_replicas,
    parse_text,
    parse_topic,
)


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name after the prefix, default, parser and meaning."""

    field: str
    default: str
    parse: Callable[[str], object]
    help: str

    @property
    def variable(self) -> str:
        return PREFIX + self.field.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("broker", "kafka://127.0.0.1:9092", parse_broker_urls, "Kafka bootstrap servers, comma-separated."),
    Setting(
        "security_protocol",
        "PLAINTEXT",
        parse_security_protocol,
        "How every client talks to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (a user over TLS).",
    ),
    Setting(
        "sasl_mechanism",
        "SCRAM-SHA-512",
        parse_sasl_mechanism,
        "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    ),
    Setting("sasl_username", "", parse_text, "SASL user name (SASL_PLAINTEXT, SASL_SSL)."),
    Setting(
        "sasl_password",
        "",
        Secret,
        "SASL password; never printed. Or FILESTREAM_SASL_PASSWORD_FILE, not both.",
    ),
    Setting(
        "sasl_password_file",
        "",
        parse_optional_path,
        "File holding the SASL password (one trailing newline is stripped), instead of FILESTREAM_SASL_PASSWORD.",
    ),
    Setting(
        "ssl_ca_file",
        "",
        parse_optional_path,
        "PEM file of the CA certificates the brokers' certificates are checked against (SSL, SASL_SSL); "
        "empty: the system's.",
    ),
    Setting("ssl_cert_file", "", parse_optional_path, "PEM client certificate (chain) for brokers that require one."),
    Setting(
        "ssl_key_file",
        "",
        parse_optional_path,
        "PEM private key of FILESTREAM_SSL_CERT_FILE; empty: the key is in that file.",
    ),
    Setting(
        "ssl_key_password_file",
        "",
        parse_optional_path,
        "File holding the password of an encrypted client key (one trailing newline is stripped).",
    ),
    Setting(
        "ssl_check_hostname",
        "true",
        parse_bool,
        "Check that a broker's certificate names the host connected to (the CA check is always on).",
    ),
    Setting(
        "config",
        "",
        parse_optional_path,
        "OpenMSIStream configuration file: its broker, security and S3 values apply where no variable is set. "
        "The commands take --config FILE.",
    ),
    Setting("app_id", "filestream", parse_name, "Faust application id: consumer group and changelog topic prefix."),
    Setting("data_dir", "var/data", Path, "Table state (RocksDB) and the uploader's registry."),
    Setting("output_dir", "var/output", Path, "Where completed files are written."),
    Setting("write_output", "true", parse_bool, "Write completed files into the output directory."),
    Setting("chunks_topic", "filestream-chunks", parse_topic, "Topic carrying file chunks."),
    Setting(
        "chunk_codec",
        "filestream",
        one_of(CHUNK_CODECS),
        "Records on the chunk topic: filestream, openmsistream, or auto (told apart per message by their first byte).",
    ),
    Setting(
        "openmsistream_topic",
        "",
        parse_optional_topic,
        "Topic OpenMSIStream uploaders write to: the worker re-keys its chunks by file into the chunk topic "
        "(then FILESTREAM_CHUNK_CODEC must be auto or openmsistream). Empty: none.",
    ),
    Setting(
        "openmsistream_source",
        "openmsistream",
        validate_source,
        "Source name of files read from OpenMSIStream records; their identity is this name/subdir/filename.",
    ),
    Setting("completed_topic", "filestream-completed", parse_topic, "Topic of completed and failed file events."),
    Setting(
        "dead_letter_topic",
        "filestream-dead-letters",
        parse_topic,
        "Topic every rejected chunk record goes to, unchanged, with the reason and its source offset in headers.",
    ),
    Setting("metadata_topic", "filestream-metadata", parse_topic, "Topic of per-file JSON metadata messages."),
    Setting(
        "metadata_enabled",
        "true",
        parse_bool,
        "Publish a JSON metadata message per completed file on the metadata topic. Needs FILESTREAM_WRITE_OUTPUT.",
    ),
    Setting(
        "processors",
        "",
        parse_module_names,
        "Modules of user processors and reproducers, comma-separated (e.g. examples.csv_stats), imported by the app.",
    ),
    Setting("partitions", "8", parse_partitions, "Partitions of every filestream topic (the unit of scale-out)."),
    Setting("replication_factor", "1", parse_replicas, "Replication factor of the topics filestream creates."),
    Setting(
        "standby_replicas",
        "1",
        parse_standby_replicas,
        "Standby copies of each table partition kept current on other workers (Faust's table_standby_replicas): "
        "a worker taking a partition over with its standby restores only what it missed. 0: none.",
    ),
    Setting("chunk_size", "1MiB", parse_chunk_size, "Payload bytes per chunk record."),
    Setting(
        "max_file_size",
        "1TiB",
        parse_file_size,
        "Largest file a worker accepts; chunk records claiming a bigger one are rejected before any state exists.",
    ),
    Setting("partial_file_timeout", "3600", parse_seconds, "Seconds without a chunk before a partial file expires."),
    Setting(
        "processor_results_retention",
        "90",
        parse_retention_days,
        "Days a processor or reproducer outcome is kept after it was recorded; older ones are deleted (each worker "
        "its partitions', hourly), so an event of a file that old would run its processors again, and `reprocess` "
        "no longer finds it. Fractions allowed; 0: keep forever.",
    ),
    Setting(
        "file_history_retention",
        "90",
        parse_retention_days,
        "Days a finished file's assembly state and settled S3 transfer record are kept after both last changed; older "
        "ones are deleted (each worker its partitions', hourly), so chunks of a file that old read again would be "
        "assembled and transferred anew. A file in flight or a transfer with work ahead is never deleted. Fractions "
        "allowed; 0: keep forever.",
    ),
    Setting(
        "s3_enabled", "true", parse_bool, "Transfer completed files to S3; their spooled bytes are kept until then."
    ),
    Setting("s3_bucket", "filestream", parse_text, "Bucket completed files are transferred to."),
    Setting("s3_prefix", "", parse_text, "Key prefix inside the bucket."),
    Setting(
        "s3_multipart_threshold",
        "8MiB",
        parse_multipart_threshold,
        "Files of at least this size go to S3 in parts, smaller ones in one request. At most the part size.",
    ),
    Setting(
        "s3_part_size",
        "8MiB",
        parse_part_size,
        "Multipart part size; an upload holds one part per S3_THREADS thread in memory. S3's minimum is 5MiB.",
    ),
    Setting("s3_max_retries", "3", parse_s3_retries, "Retries of a failed S3 transfer before it fails for good."),
    Setting(
        "s3_concurrency",
        "8",
        parse_s3_parallelism,
        "Files each worker transfers to S3 at once.",
    ),
    Setting(
        "s3_threads",
        "8",
        parse_s3_parallelism,
        "Threads sending the parts of multipart uploads (and downloads' files) at once; with S3_CONCURRENCY, "
        "the S3 connection pool size.",
    ),
    Setting(
        "s3_retry_backoff",
        "2",
        parse_seconds,
        "Seconds before the first retry of a failed transfer; doubles with each retry.",
    ),
    Setting("s3_retry_backoff_max", "300", parse_seconds, "Longest wait before retrying a failed transfer, seconds."),
    Setting("web_port", "6066", parse_port, "Port of the worker's web server (views, metrics)."),
    Setting(
        "web_host",
        "127.0.0.1",
        parse_text,
        "Host name other workers and clients use to reach this worker's web server.",
    ),
    Setting(
        "web_enabled", "true", parse_bool, "Run the worker's web server at all (health, views, dashboard, metrics)."
    ),
    Setting(
        "views_enabled",
        "true",
        parse_bool,
        "Serve the inspection views, the dashboard and /metrics; the health view stays while the web server runs.",
    ),
    Setting(
        "web_token",
        "",
        parse_text,
        "Token every view but health requires (header Authorization: Bearer TOKEN, or ?token=TOKEN); empty: none.",
    ),
    Setting("log_level", "info", one_of(LOG_LEVELS), "Log level of filestream's own loggers."),
    Setting(
        "log_format",
        "text",
        one_of(LOG_FORMATS),
        "Log lines as Faust's plain text, or json: one JSON object per line (time, level, logger, message, and "
        "file, generation, partition where the line is about a file).",
    ),
    Setting("session_timeout", "30", parse_seconds, "Consumer group session timeout, seconds."),
    Setting("heartbeat_interval", "3", parse_seconds, "Consumer group heartbeat interval, seconds."),
    Setting(
        "dev_broker",
        "false",
        parse_bool,
        "Set by the embedded stack: turns on the workarounds for the Tansu development broker. Never in production.",
    ),
)


def settings_table_markdown() -> str:
    """The README's settings table, generated so it cannot drift from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.variable}` | `{s.default}` | {s.help} |" for s in SETTINGS]
    return "\n".join(rows)


README_TABLE_START = "<!-- settings-table: generated by `python -m settings`; a test keeps it current -->"
README_TABLE_END = "<!-- end settings-table -->"


def update_readme(readme: Path) -> None:
    """Rewrite the settings table between the README's markers."""
    text = readme.read_text()
    head, rest = text.split(README_TABLE_START, 1)
    _, tail = rest.split(README_TABLE_END, 1)
    readme.write_text(f"{head}{README_TABLE_START}\n{settings_table_markdown()}\n{README_TABLE_END}{tail}")
