"""OpenMSIStream configuration files, read for what filestream's settings can take from them.

OpenMSIStream 1.8 keeps its client configuration in an INI file (read with Python's
``configparser``, ``%`` interpolation included) with these sections:

- ``[broker]``: librdkafka properties shared by every client: ``bootstrap.servers``,
  ``security.protocol``, ``sasl.mechanism``, ``sasl.username``, ``sasl.password``, ``ssl.*``;
- ``[producer]``, ``[consumer]``: librdkafka tuning (``batch.size``, ``linger.ms``,
  ``compression.type``, ``group.id``, ``auto.offset.reset``, ...) and the names of
  OpenMSIStream's (de)serializer classes;
- ``[s3]``: ``access_key_id``, ``secret_key_id``, ``endpoint_url`` and ``region`` of its S3
  transfer (the bucket is its command's ``--bucket_name``; a ``bucket_name`` here is taken too);
- ``[kafkacrypto]``, ``[heartbeat]``, ``[log]``: KafkaCrypto and OpenMSIStream's own topics.

A value starting with ``$`` names an environment variable (``$NAME`` or ``${NAME}``), as
OpenMSIStream expands it; a variable that is not set is an error for the broker's values, and
leaves an S3 value out (named in the warning), so a command that needs no S3 still runs.

:func:`read_openmsistream_config` maps what it can onto filestream's settings (by field name,
``broker`` for ``FILESTREAM_BROKER``) and the standard AWS variables boto3 reads, and sorts
every other key into those filestream sets itself (the clients' tuning, the record format)
and those it does not understand.
"""

from __future__ import annotations

import configparser
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from errors import ConfigurationError


class ConfigFileError(ConfigurationError, ValueError):
    """The file cannot be read, is no INI file, or names an environment variable that is not set."""


def _broker_urls(value: str) -> str:
    """librdkafka's ``host:port,host:port`` (a ``PROTOCOL://`` prefix allowed) as filestream's broker URLs."""
    addresses = [part.strip().rsplit("://", 1)[-1] for part in value.split(",") if part.strip()]
    return ",".join(f"kafka://{address}" for address in addresses)


def _check_hostname(value: str) -> str:
    """librdkafka's ``ssl.endpoint.identification.algorithm``: ``https`` checks the host name, ``none`` does not."""
    return "false" if value.strip().lower() == "none" else "true"


def _seconds(milliseconds: str) -> str:
    try:
        return str(float(milliseconds) / 1000)
    except ValueError:
        return milliseconds  # the setting's own parser names it as invalid


def _s3_endpoint(value: str) -> str:
    """OpenMSIStream's S3 client puts ``https://`` before an endpoint that has no scheme."""
    return value if value.startswith(("http://", "https://")) else f"https://{value}"


def _unchanged(value: str) -> str:
    return value


# (section, key) -> (filestream setting field, conversion)
SETTING_KEYS: dict[tuple[str, str], tuple[str, Callable[[str], str]]] = {
    ("broker", "bootstrap.servers"): ("broker", _broker_urls),
    ("broker", "security.protocol"): ("security_protocol", str.upper),
    ("broker", "sasl.mechanism"): ("sasl_mechanism", str.upper),
    ("broker", "sasl.mechanisms"): ("sasl_mechanism", str.upper),  # librdkafka's older name
    ("broker", "sasl.username"): ("sasl_username", _unchanged),
    ("broker", "sasl.password"): ("sasl_password", _unchanged),
    ("broker", "ssl.ca.location"): ("ssl_ca_file", _unchanged),
    ("broker", "ssl.certificate.location"): ("ssl_cert_file", _unchanged),
    ("broker", "ssl.key.location"): ("ssl_key_file", _unchanged),
    ("broker", "ssl.endpoint.identification.algorithm"): ("ssl_check_hostname", _check_hostname),
    ("consumer", "session.timeout.ms"): ("session_timeout", _seconds),
    ("consumer", "heartbeat.interval.ms"): ("heartbeat_interval", _seconds),
    ("s3", "bucket_name"): ("s3_bucket", _unchanged),
}
# (section, key) -> standard AWS variable, read by boto3
AWS_KEYS: dict[tuple[str, str], tuple[str, Callable[[str], str]]] = {
    ("s3", "access_key_id"): ("AWS_ACCESS_KEY_ID", _unchanged),
    ("s3", "secret_key_id"): ("AWS_SECRET_ACCESS_KEY", _unchanged),
    ("s3", "endpoint_url"): ("AWS_ENDPOINT_URL_S3", _s3_endpoint),
    ("s3", "region"): ("AWS_DEFAULT_REGION", _unchanged),
}
# Any of these set in the environment means the user chose that part of the AWS configuration there.
AWS_EXPLICIT = {
    "AWS_ACCESS_KEY_ID": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"),
    "AWS_SECRET_ACCESS_KEY": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"),
    "AWS_ENDPOINT_URL_S3": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "AWS_DEFAULT_REGION": ("AWS_DEFAULT_REGION", "AWS_REGION"),
}
# Keys of OpenMSIStream's shipped [producer] and [consumer] sections that filestream decides itself:
# its clients are tuned for its records, its consumer group is FILESTREAM_APP_ID and it commits offsets
# only once a record is processed, and it reads OpenMSIStream's records without their (de)serializers.
HANDLED_BY_FILESTREAM = {
    "producer": {"batch.size", "linger.ms", "compression.type", "key.serializer", "value.serializer"},
    "consumer": {
        "group.id",
        "auto.offset.reset",
        "enable.auto.commit",
        "fetch.min.bytes",
        "key.deserializer",
        "value.deserializer",
    },
}
# OpenMSIStream leaves these out of its broker, producer and consumer configurations.
IGNORED_BY_OPENMSISTREAM = {"node_id"}


@dataclass
class OpenMSIStreamConfig:
    path: Path
    # filestream setting field -> value, e.g. "broker" -> "kafka://host:9092"
    settings: dict[str, str] = field(default_factory=dict)
    # AWS variable -> value
    aws: dict[str, str] = field(default_factory=dict)
    # setting field or AWS variable -> "[section] key of FILE", for messages
    origins: dict[str, str] = field(default_factory=dict)
    not_understood: list[str] = field(default_factory=list)
    handled_by_filestream: list[str] = field(default_factory=list)

    def aws_applicable(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The AWS variables from the file that the environment leaves to it."""
        return {
            variable: value
            for variable, value in self.aws.items()
            if not any(environ.get(explicit) for explicit in AWS_EXPLICIT[variable])
        }


def read_openmsistream_config(path: Path, environ: Mapping[str, str]) -> OpenMSIStreamConfig:
    parser = configparser.ConfigParser()
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path} is not an OpenMSIStream configuration file: {exc}") from None
    config = OpenMSIStreamConfig(path)
    config.not_understood += [f"[{parser.default_section}] {key}" for key in parser.defaults()]
    for section in parser.sections():
        for key in _own_keys(parser, section):
            _take(config, parser, section, key, environ)
    return config


def _own_keys(parser: configparser.ConfigParser, section: str) -> list[str]:
    """The section's keys without those it inherits from ``[DEFAULT]`` (reported once, under that name)."""
    return [key for key in parser.options(section) if not parser.has_option(parser.default_section, key)]


def _take(
    config: OpenMSIStreamConfig, parser: configparser.ConfigParser, section: str, key: str, environ: Mapping[str, str]
) -> None:
    name = f"[{section}] {key}"
    target = SETTING_KEYS.get((section, key)) or AWS_KEYS.get((section, key))
    if target is None:
        if key in HANDLED_BY_FILESTREAM.get(section, ()):
            config.handled_by_filestream.append(name)
        elif key not in IGNORED_BY_OPENMSISTREAM or section not in ("broker", "producer", "consumer"):
            config.not_understood.append(name)
        return
    try:
        raw = parser.get(section, key)
    except configparser.Error as exc:
        raise ConfigFileError(f"{config.path}: {name}: {exc}") from None
    try:
        value = _expand(raw, environ)
    except KeyError as exc:
        if section == "s3":
            config.not_understood.append(f"{name} (${exc.args[0]} is not set)")
            return
        raise ConfigFileError(
            f"{config.path}: {name} = {raw}, but the environment variable {exc.args[0]} is not set"
        ) from None
    variable, convert = target
    destination = config.aws if (section, key) in AWS_KEYS else config.settings
    destination[variable] = convert(value.strip())
    config.origins[variable] = f"{name} of {config.path}"


def _expand(value: str, environ: Mapping[str, str]) -> str:
    """Expand ``$NAME`` / ``${NAME}`` from ``environ`` in a value starting with ``$``, as OpenMSIStream does.

    KeyError names a variable that is not set.
    """
    if not value.startswith("$"):
        return value
    try:
        return string.Template(value).substitute(environ)
    except ValueError:
        return value  # no variable name after the `$`: the value is literal
