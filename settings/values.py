"""How a ``FILESTREAM_*`` variable's text becomes a value: the parsers, the bounds they check, and :class:`Secret`.

A parser raises ``ValueError`` saying what it expected; ``load_settings`` turns that into a
:class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from errors import ConfigurationError

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


def parse_retention_days(text: str) -> float:
    """Days, from 0 (keep forever) to :data:`MAX_RETENTION_DAYS`; fractions allowed (0.5: twelve hours)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_RETENTION_DAYS:  # also refuses nan
        raise ValueError(f"expected a number of days from 0 to {MAX_RETENTION_DAYS} (0: keep forever), got {text!r}")
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

# Standby copies of each table partition, on other workers: more than the workers but one is never used.
MAX_STANDBY_REPLICAS = 1000
MAX_RETENTION_DAYS = 36_500  # a hundred years: beyond it, 0 (keep forever) says it better

parse_port = whole_numbers(1, MAX_PORT, "a TCP port")
parse_partitions = whole_numbers(1, MAX_PARTITIONS)
parse_replicas = whole_numbers(1, MAX_REPLICATION_FACTOR)
parse_s3_retries = whole_numbers(0, MAX_S3_RETRIES)
parse_s3_parallelism = whole_numbers(1, MAX_S3_PARALLELISM)
parse_standby_replicas = whole_numbers(0, MAX_STANDBY_REPLICAS)
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
