"""Deployment settings, read once from ``FILESTREAM_*`` environment variables.

Every value a deployment changes lives here, with a default that works with the
embedded development stack (``python -m devstack``).  An invalid value raises
:class:`SettingsError` naming the variable, so a worker stops at start instead of
failing later in some agent.

S3 credentials and the S3 endpoint are deliberately *not* here: boto3 reads the
standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_ENDPOINT_URL_S3``
variables itself.

An OpenMSIStream configuration file (``FILESTREAM_CONFIG``, or ``--config`` on the commands)
supplies the broker, security and S3 values it holds (``client/openmsistream_config.py``);
variables set explicitly win over it.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from client.openmsistream_config import ConfigFileError, read_openmsistream_config
from errors import ConfigurationError
from logs import LOG_FORMATS
from models.bounds import ChunkLimits
from models.identity import validate_source

log = logging.getLogger(__name__)

PREFIX = "FILESTREAM_"

BROKER_SCHEMES = ("kafka", "aiokafka")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CHUNK_CODECS = ("filestream", "openmsistream", "auto")  # one decoder each in models.chunk_codecs
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
S3_MIN_PART_SIZE = 5 * 1024**2

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class SettingsError(ConfigurationError, ValueError):
    """A ``FILESTREAM_*`` variable holds a value the application cannot use."""


class Secret:
    """A password: its repr and str never show the value, so no log line, error message or view can leak it.

    Ten lines of our own rather than pydantic's SecretStr: pydantic is no runtime dependency.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The password itself, for the client that sends it to the broker."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def parse_size(text: str) -> int:
    """``"1MiB"`` → 1048576, ``"512k"`` → 512000, ``"4096"`` → 4096."""
    match = _SIZE_RE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"expected a byte size such as 1048576, 512KiB or 4MiB, got {text!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    # "inf" parses, and would end a worker at start in an OverflowError (Faust's int(seconds * 1000)).
    if not 0 < value < math.inf:
        raise ValueError(f"expected a positive, finite number of seconds, got {text!r}")
    return value


def whole_numbers(minimum: int, maximum: int, what: str = "a whole number") -> Callable[[str], int]:
    """A parser of whole numbers from ``minimum`` to ``maximum``; its error names the range."""

    def parse_whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise ValueError(f"expected {what} from {minimum} to {maximum}, got {text!r}")
        return value

    return parse_whole_number


def byte_sizes(minimum: int, maximum: int) -> Callable[[str], int]:
    """A parser of :func:`parse_size` sizes from ``minimum`` to ``maximum`` bytes; its error names the range."""

    def parse_byte_size(text: str) -> int:
        expected = f"a byte size from {size_text(minimum)} to {size_text(maximum)} (such as 1048576, 512KiB or 4MiB)"
        try:
            value = parse_size(text)
        except ValueError:
            raise ValueError(f"expected {expected}, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"expected {expected}, got {text!r} ({value} bytes)")
        return value

    return parse_byte_size


def size_text(size: int) -> str:
    """``5MiB`` for a whole number of binary units, else ``1073709055 bytes``."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return "1 byte" if size == 1 else f"{size} bytes"


# The bounds of ports, sizes and counts: a value outside them is a typo or cannot work, and would
# otherwise be found out later, by a client library or a broker, in a message naming no variable.
MAX_PORT = 65535
# Kafka's message and request size settings are 32-bit signed integers; a chunk record needs
# Settings.max_message_bytes, twice the chunk plus 64 KiB, so this is the largest chunk Kafka can carry.
KAFKA_MAX_MESSAGE_BYTES = 2**31 - 1
MAX_CHUNK_SIZE = (KAFKA_MAX_MESSAGE_BYTES - 64 * 1024) // 2
MAX_PARTITIONS = 10_000  # per topic; each is also a partition of every table's changelog
MAX_REPLICATION_FACTOR = 2**15 - 1  # a 16-bit field of Kafka's CreateTopics request
S3_MAX_PART_SIZE = 5 * 1024**3  # also S3's largest single-request upload
S3_MAX_OBJECT_SIZE = 5 * 1024**4
MAX_S3_RETRIES = 1000  # days of backoff at the default cap of 300 s
# Files transferred at once, threads sending parts: far more than one worker's network can keep busy.
MAX_S3_PARALLELISM = 256

parse_port = whole_numbers(1, MAX_PORT, "a TCP port")
parse_partitions = whole_numbers(1, MAX_PARTITIONS)
parse_replicas = whole_numbers(1, MAX_REPLICATION_FACTOR)
parse_s3_retries = whole_numbers(0, MAX_S3_RETRIES)
parse_s3_parallelism = whole_numbers(1, MAX_S3_PARALLELISM)
parse_chunk_size = byte_sizes(1, MAX_CHUNK_SIZE)
parse_file_size = byte_sizes(1, S3_MAX_OBJECT_SIZE)
parse_multipart_threshold = byte_sizes(0, S3_MAX_PART_SIZE)  # 0: every file but an empty one in parts
parse_part_size = byte_sizes(S3_MIN_PART_SIZE, S3_MAX_PART_SIZE)


def parse_broker_urls(text: str) -> tuple[str, ...]:
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    if not urls:
        raise ValueError("expected one or more broker URLs such as kafka://host:9092")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
            raise ValueError(
                f"expected URLs like kafka://host:9092 (schemes: {', '.join(BROKER_SCHEMES)}), got {url!r}"
            )
        _ = parts.port  # raises ValueError on a non-numeric port
    return urls


def parse_topic(text: str) -> str:
    if not _TOPIC_RE.match(text):
        raise ValueError(f"expected a Kafka topic name (letters, digits, '.', '_', '-'), got {text!r}")
    return text


def parse_name(text: str) -> str:
    if not _NAME_RE.match(text):
        raise ValueError(f"expected letters, digits, '.', '_' or '-' only, got {text!r}")
    return text


def parse_optional_topic(text: str) -> str:
    return parse_topic(text) if text else ""


def one_of(options: tuple[str, ...]) -> Callable[[str], str]:
    """A parser accepting one of ``options``, whatever its case."""

    def parse(text: str) -> str:
        lowered = text.strip().lower()
        if lowered not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {text!r}")
        return lowered

    return parse


def parse_text(text: str) -> str:
    return text


def parse_optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


def parse_security_protocol(text: str) -> str:
    upper = text.strip().upper()
    if upper not in SECURITY_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(SECURITY_PROTOCOLS)}, got {text!r}")
    return upper


def parse_sasl_mechanism(text: str) -> str:
    upper = text.strip().upper()
    if upper not in SASL_MECHANISMS:
        raise ValueError(f"expected one of {', '.join(SASL_MECHANISMS)}, got {text!r}")
    return upper


_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def parse_module_names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if not _MODULE_RE.match(name):
            raise ValueError(f"expected importable module names such as examples.csv_stats, got {name!r}")
    return names


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
    Setting("chunk_size", "1MiB", parse_chunk_size, "Payload bytes per chunk record."),
    Setting(
        "max_file_size",
        "1TiB",
        parse_file_size,
        "Largest file a worker accepts; chunk records claiming a bigger one are rejected before any state exists.",
    ),
    Setting("partial_file_timeout", "3600", parse_seconds, "Seconds without a chunk before a partial file expires."),
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


@dataclass(frozen=True)
class Settings:
    broker: tuple[str, ...]
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    # From FILESTREAM_SASL_PASSWORD or read from FILESTREAM_SASL_PASSWORD_FILE by load_settings.
    sasl_password: Secret
    sasl_password_file: Path | None
    ssl_ca_file: Path | None
    ssl_cert_file: Path | None
    ssl_key_file: Path | None
    ssl_key_password_file: Path | None
    ssl_check_hostname: bool
    config: Path | None
    app_id: str
    data_dir: Path
    output_dir: Path
    write_output: bool
    chunks_topic: str
    chunk_codec: str
    openmsistream_topic: str
    openmsistream_source: str
    completed_topic: str
    dead_letter_topic: str
    metadata_topic: str
    metadata_enabled: bool
    processors: tuple[str, ...]
    partitions: int
    replication_factor: int
    chunk_size: int
    max_file_size: int
    partial_file_timeout: float
    s3_enabled: bool
    s3_bucket: str
    s3_prefix: str
    s3_multipart_threshold: int
    s3_part_size: int
    s3_max_retries: int
    s3_concurrency: int
    s3_threads: int
    s3_retry_backoff: float
    s3_retry_backoff_max: float
    web_port: int
    web_host: str
    web_enabled: bool
    views_enabled: bool
    web_token: str
    log_level: str
    log_format: str
    session_timeout: float
    heartbeat_interval: float
    dev_broker: bool

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` strings for clients that do not take Faust URLs (aiokafka)."""
        return [urlsplit(url).netloc for url in self.broker]

    @property
    def chunk_limits(self) -> ChunkLimits:
        """What a chunk record may claim (models.bounds): no more payload than a record can carry."""
        return ChunkLimits(max_payload_bytes=self.max_message_bytes, max_file_size=self.max_file_size)

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def topic_configs(self) -> dict[str, str]:
        """Configuration of every topic filestream creates.

        A chunk record is bigger than Kafka's 1 MiB default message limit.  With replicas, an
        acknowledged write must be on two of them, so losing one broker loses nothing.
        """
        configs = {"max.message.bytes": str(self.max_message_bytes)}
        if self.replication_factor > 1:
            configs["min.insync.replicas"] = "2"
        return configs

    @property
    def max_message_bytes(self) -> int:
        """Request/fetch limit: a whole chunk record plus its header must fit, with room to spare."""
        return max(4 * 1024**2, 2 * self.chunk_size + 64 * 1024)


def load_settings(environ: Mapping[str, str] | None = None, *, config_file: str | None = None) -> Settings:
    """The settings from ``environ`` (default: the process environment), over an OpenMSIStream config file.

    ``config_file`` (the commands' ``--config``) or ``FILESTREAM_CONFIG`` names the file; what it
    says about S3 reaches boto3 as the standard AWS variables, set in the process environment
    when that is what the settings are read from.
    """
    process_environment = environ is None
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(f"{PREFIX}CONFIG", "")
    if not config_file.strip():
        return _load(environ)
    merged, origins = _with_config_file(Path(config_file).expanduser(), environ, process_environment)
    try:
        return _load(merged)
    except SettingsError as exc:
        sources = [f"{variable} comes from {origin}" for variable, origin in origins.items() if variable in str(exc)]
        raise SettingsError("; ".join([str(exc), *sources])) from None


def _with_config_file(
    path: Path, environ: Mapping[str, str], process_environment: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """``environ`` with the config file's values wherever it sets none; and where each of those came from."""
    try:
        found = read_openmsistream_config(path, environ)
    except ConfigFileError as exc:
        raise SettingsError(f"{PREFIX}CONFIG / --config: {exc}") from None
    from_file = {PREFIX + name.upper(): value for name, value in found.settings.items()}
    origins = {PREFIX + name.upper(): origin for name, origin in found.origins.items() if name in found.settings}
    # A password given either way in the environment replaces the file's.
    if environ.get(f"{PREFIX}SASL_PASSWORD") or environ.get(f"{PREFIX}SASL_PASSWORD_FILE"):
        from_file.pop(f"{PREFIX}SASL_PASSWORD", None)
    applied = {variable: value for variable, value in from_file.items() if not environ.get(variable)}
    aws = found.aws_applicable(environ)
    if found.not_understood:
        log.warning("%s: not understood, not used: %s", path, ", ".join(found.not_understood))
    if found.handled_by_filestream:
        log.info("%s: set by filestream itself, not taken: %s", path, ", ".join(found.handled_by_filestream))
    overridden = sorted((set(from_file) - set(applied)) | (set(found.aws) - set(aws)))
    if overridden:
        log.info("%s: the environment sets %s, which win over the file", path, ", ".join(overridden))
    merged = {**environ, **applied, f"{PREFIX}CONFIG": str(path)}
    if process_environment:
        os.environ.update(aws)  # boto3 reads these itself, from the process environment
    else:
        merged.update(aws)
    return merged, {variable: origins[variable] for variable in applied}


def config_file_argument(argv: Sequence[str]) -> str | None:
    """The value of ``--config FILE`` / ``--config=FILE`` on a command line, if any.

    The commands run inside the app, which ``faust -A app`` builds from the settings before
    click parses the command's options; so the app takes the file from its command line itself.
    """
    for index, argument in enumerate(argv):
        if argument == "--":
            break
        if argument == "--config" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--config="):
            return argument.removeprefix("--config=")
    return None


def _load(environ: Mapping[str, str]) -> Settings:
    # Each parser returns its own field's type; the pairing lives in SETTINGS, where the type system cannot see it.
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.variable, setting.default)
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{setting.variable}: {exc}") from None
    settings = _with_sasl_password(Settings(**values))
    _check_broker_security(settings)
    if settings.heartbeat_interval >= settings.session_timeout:
        raise SettingsError(
            f"{PREFIX}HEARTBEAT_INTERVAL ({settings.heartbeat_interval}) must be shorter than "
            f"{PREFIX}SESSION_TIMEOUT ({settings.session_timeout})"
        )
    if settings.openmsistream_topic:
        _check_openmsistream_intake(settings)
    if settings.s3_multipart_threshold > settings.s3_part_size:
        # A file below the threshold is buffered whole for its single request.
        raise SettingsError(
            f"{PREFIX}S3_MULTIPART_THRESHOLD ({settings.s3_multipart_threshold}) must not exceed "
            f"{PREFIX}S3_PART_SIZE ({settings.s3_part_size})"
        )
    return settings


def _with_sasl_password(settings: Settings) -> Settings:
    if settings.sasl_password_file is None:
        return settings
    if settings.sasl_password:
        raise SettingsError(f"set {PREFIX}SASL_PASSWORD or {PREFIX}SASL_PASSWORD_FILE, not both")
    password = read_secret_file(settings.sasl_password_file, f"{PREFIX}SASL_PASSWORD_FILE")
    return replace(settings, sasl_password=Secret(password))


def read_secret_file(path: Path, variable: str) -> str:
    """A password kept in a file, as editors save it: one trailing newline is not part of it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise SettingsError(f"{variable}: {path} is empty")
    return password


def _check_broker_security(settings: Settings) -> None:
    """Combinations that cannot work, caught at start instead of as a refused connection later."""
    protocol = f"{PREFIX}SECURITY_PROTOCOL is {settings.security_protocol}"
    if settings.uses_sasl:
        if not settings.sasl_username:
            raise SettingsError(f"{protocol}: set {PREFIX}SASL_USERNAME")
        if not settings.sasl_password:
            raise SettingsError(f"{protocol}: set {PREFIX}SASL_PASSWORD or {PREFIX}SASL_PASSWORD_FILE")
    elif settings.sasl_username or settings.sasl_password:
        raise SettingsError(
            f"a SASL user is set but {protocol}, which sends none: set it to SASL_SSL (or SASL_PLAINTEXT)"
        )
    tls_files = {
        "SSL_CA_FILE": settings.ssl_ca_file,
        "SSL_CERT_FILE": settings.ssl_cert_file,
        "SSL_KEY_FILE": settings.ssl_key_file,
        "SSL_KEY_PASSWORD_FILE": settings.ssl_key_password_file,
    }
    for name, path in tls_files.items():
        if path is None:
            continue
        if not settings.uses_tls:
            raise SettingsError(f"{PREFIX}{name} is set but {protocol}, which uses no TLS: set it to SSL or SASL_SSL")
        if not path.is_file():
            raise SettingsError(f"{PREFIX}{name}: no such file: {path}")
    if settings.ssl_key_file is not None and settings.ssl_cert_file is None:
        raise SettingsError(f"{PREFIX}SSL_KEY_FILE is set: set {PREFIX}SSL_CERT_FILE to its certificate")
    if settings.ssl_key_password_file is not None and settings.ssl_cert_file is None:
        raise SettingsError(f"{PREFIX}SSL_KEY_PASSWORD_FILE is set: set {PREFIX}SSL_CERT_FILE and its key")


def _check_openmsistream_intake(settings: Settings) -> None:
    if settings.openmsistream_topic == settings.chunks_topic:
        raise SettingsError(
            f"{PREFIX}OPENMSISTREAM_TOPIC is forwarded into {PREFIX}CHUNKS_TOPIC, so it must be another topic "
            f"(both are {settings.chunks_topic!r})"
        )
    if settings.chunk_codec == "filestream":
        raise SettingsError(
            f"{PREFIX}OPENMSISTREAM_TOPIC forwards OpenMSIStream records into {PREFIX}CHUNKS_TOPIC: "
            f"set {PREFIX}CHUNK_CODEC to auto (or openmsistream if no filestream uploader writes there)"
        )


def settings_table_markdown() -> str:
    """The README's settings table, generated so it cannot drift from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.variable}` | `{s.default}` | {s.help} |" for s in SETTINGS]
    return "\n".join(rows)


README_TABLE_START = "<!-- settings-table: generated by `python settings.py`; a test keeps it current -->"
README_TABLE_END = "<!-- end settings-table -->"


def update_readme(readme: Path) -> None:
    """Rewrite the settings table between the README's markers."""
    text = readme.read_text()
    head, rest = text.split(README_TABLE_START, 1)
    _, tail = rest.split(README_TABLE_END, 1)
    readme.write_text(f"{head}{README_TABLE_START}\n{settings_table_markdown()}\n{README_TABLE_END}{tail}")


if __name__ == "__main__":
    update_readme(Path(__file__).with_name("README.md"))
