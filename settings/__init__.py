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

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from models.bounds import ChunkLimits
from settings.catalogue import SETTINGS
from settings.sources import config_file_argument, read_secret_file, with_config_file
from settings.values import PREFIX, Secret, SettingsError

__all__ = ["PREFIX", "Settings", "SettingsError", "config_file_argument", "load_settings"]


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
    standby_replicas: int
    chunk_size: int
    max_file_size: int
    partial_file_timeout: float
    processor_results_retention: float
    file_history_retention: float
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
    merged, origins = with_config_file(Path(config_file).expanduser(), environ, process_environment)
    try:
        return _load(merged)
    except SettingsError as exc:
        sources = [f"{variable} comes from {origin}" for variable, origin in origins.items() if variable in str(exc)]
        raise SettingsError("; ".join([str(exc), *sources])) from None


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
