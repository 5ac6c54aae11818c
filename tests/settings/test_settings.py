import dataclasses
from pathlib import Path

import pytest

from settings import Settings, SettingsError, load_settings
from settings.catalogue import README_TABLE_END, README_TABLE_START, SETTINGS, settings_table_markdown
from settings.values import KAFKA_MAX_MESSAGE_BYTES, MAX_CHUNK_SIZE, parse_size


def test_defaults_load_and_point_at_the_embedded_stack():
    settings = load_settings({})
    assert settings.broker == ("kafka://127.0.0.1:9092",)
    assert settings.bootstrap_servers == ["127.0.0.1:9092"]
    assert settings.chunk_size == 1024**2
    assert settings.partitions == 8
    assert settings.data_dir == Path("var/data")
    assert settings.dev_broker is False


def test_every_setting_has_a_field_and_a_readme_row():
    assert [s.field for s in SETTINGS] == [f.name for f in dataclasses.fields(Settings)]
    table = settings_table_markdown()
    for setting in SETTINGS:
        assert f"`{setting.variable}`" in table


@pytest.mark.parametrize(
    "text, expected",
    [("4096", 4096), ("512KiB", 512 * 1024), ("4MiB", 4 * 1024**2), ("1mb", 10**6), ("2 GiB", 2 * 1024**3)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "variable, value",
    [
        ("FILESTREAM_CHUNK_SIZE", "lots"),
        ("FILESTREAM_CHUNK_SIZE", "12 parsecs"),
        ("FILESTREAM_BROKER", "http://localhost:9092"),
        ("FILESTREAM_BROKER", ""),
        ("FILESTREAM_PARTITIONS", "-3"),
        ("FILESTREAM_PARTITIONS", "eight"),
        ("FILESTREAM_WEB_PORT", "70000"),
        ("FILESTREAM_WRITE_OUTPUT", "perhaps"),
        ("FILESTREAM_CHUNKS_TOPIC", "bad topic"),
        ("FILESTREAM_LOG_LEVEL", "loud"),
        ("FILESTREAM_LOG_FORMAT", "xml"),
        ("FILESTREAM_SESSION_TIMEOUT", "0"),
    ],
)
def test_invalid_values_name_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})


def test_heartbeat_must_be_shorter_than_session():
    with pytest.raises(SettingsError, match="HEARTBEAT_INTERVAL"):
        load_settings({"FILESTREAM_SESSION_TIMEOUT": "3", "FILESTREAM_HEARTBEAT_INTERVAL": "5"})


def test_several_brokers():
    settings = load_settings({"FILESTREAM_BROKER": "kafka://a:9092, kafka://b:9093"})
    assert settings.bootstrap_servers == ["a:9092", "b:9093"]


def test_readme_settings_table_is_current():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split(README_TABLE_START, 1)[1].split(README_TABLE_END, 1)[0]
    assert section.strip() == settings_table_markdown(), "run `python -m settings` to regenerate it"


def test_openmsistream_intake_is_off_by_default():
    settings = load_settings({})
    assert (settings.chunk_codec, settings.openmsistream_topic, settings.openmsistream_source) == (
        "filestream",
        "",
        "openmsistream",
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"FILESTREAM_CHUNK_CODEC": "json"}, "FILESTREAM_CHUNK_CODEC"),
        ({"FILESTREAM_OPENMSISTREAM_TOPIC": "bad topic"}, "FILESTREAM_OPENMSISTREAM_TOPIC"),
        ({"FILESTREAM_OPENMSISTREAM_SOURCE": "a/b"}, "FILESTREAM_OPENMSISTREAM_SOURCE"),
        ({"FILESTREAM_OPENMSISTREAM_TOPIC": "omsi"}, "set FILESTREAM_CHUNK_CODEC to auto"),
        (
            {"FILESTREAM_OPENMSISTREAM_TOPIC": "filestream-chunks", "FILESTREAM_CHUNK_CODEC": "auto"},
            "must be another topic",
        ),
    ],
)
def test_openmsistream_settings_are_checked(overrides, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(overrides)


def test_openmsistream_intake_with_auto_detection():
    settings = load_settings({"FILESTREAM_OPENMSISTREAM_TOPIC": "omsi", "FILESTREAM_CHUNK_CODEC": "Auto"})
    assert (settings.openmsistream_topic, settings.chunk_codec) == ("omsi", "auto")


@pytest.mark.parametrize(
    "variable, value, allowed",
    [
        ("FILESTREAM_WEB_PORT", "99999", "a TCP port from 1 to 65535"),
        ("FILESTREAM_WEB_PORT", "0", "a TCP port from 1 to 65535"),
        ("FILESTREAM_WEB_PORT", "http", "a TCP port from 1 to 65535"),
        ("FILESTREAM_PARTITIONS", "0", "from 1 to 10000"),
        ("FILESTREAM_PARTITIONS", "10001", "from 1 to 10000"),
        ("FILESTREAM_REPLICATION_FACTOR", "0", "from 1 to 32767"),
        ("FILESTREAM_REPLICATION_FACTOR", "32768", "from 1 to 32767"),
        ("FILESTREAM_CHUNK_SIZE", "0", f"from 1 byte to {MAX_CHUNK_SIZE} bytes"),
        ("FILESTREAM_CHUNK_SIZE", "1GiB", f"from 1 byte to {MAX_CHUNK_SIZE} bytes"),
        ("FILESTREAM_CHUNK_SIZE", "lots", f"from 1 byte to {MAX_CHUNK_SIZE} bytes"),
        ("FILESTREAM_MAX_FILE_SIZE", "0", "from 1 byte to 5TiB"),
        ("FILESTREAM_MAX_FILE_SIZE", "6TiB", "from 1 byte to 5TiB"),
        ("FILESTREAM_S3_PART_SIZE", "4MiB", "from 5MiB to 5GiB"),
        ("FILESTREAM_S3_PART_SIZE", "6GiB", "from 5MiB to 5GiB"),
        ("FILESTREAM_S3_MULTIPART_THRESHOLD", "6GiB", "from 0 bytes to 5GiB"),
        ("FILESTREAM_S3_MAX_RETRIES", "-1", "from 0 to 1000"),
        ("FILESTREAM_S3_MAX_RETRIES", "1001", "from 0 to 1000"),
        ("FILESTREAM_S3_CONCURRENCY", "0", "from 1 to 256"),
        ("FILESTREAM_S3_THREADS", "257", "from 1 to 256"),
        ("FILESTREAM_STANDBY_REPLICAS", "-1", "from 0 to 1000"),
        ("FILESTREAM_STANDBY_REPLICAS", "1001", "from 0 to 1000"),
        ("FILESTREAM_STANDBY_REPLICAS", "one", "from 0 to 1000"),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "-1", "days from 0 to 36500"),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "36501", "days from 0 to 36500"),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "nan", "days from 0 to 36500"),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "forever", "days from 0 to 36500"),
        ("FILESTREAM_FILE_HISTORY_RETENTION", "-1", "days from 0 to 36500"),
        ("FILESTREAM_FILE_HISTORY_RETENTION", "36501", "days from 0 to 36500"),
        ("FILESTREAM_FILE_HISTORY_RETENTION", "nan", "days from 0 to 36500"),
    ],
)
def test_ports_sizes_and_counts_out_of_range_name_the_variable_and_the_range(variable, value, allowed):
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}: expected ")
    assert allowed in message
    assert repr(value) in message


def test_the_message_of_the_issue():
    with pytest.raises(SettingsError) as raised:
        load_settings({"FILESTREAM_WEB_PORT": "99999"})
    assert str(raised.value) == "FILESTREAM_WEB_PORT: expected a TCP port from 1 to 65535, got '99999'"


@pytest.mark.parametrize(
    "variable, value, field, expected",
    [
        ("FILESTREAM_WEB_PORT", "1", "web_port", 1),
        ("FILESTREAM_WEB_PORT", "65535", "web_port", 65535),
        ("FILESTREAM_PARTITIONS", "10000", "partitions", 10_000),
        ("FILESTREAM_CHUNK_SIZE", "1", "chunk_size", 1),
        ("FILESTREAM_CHUNK_SIZE", str(MAX_CHUNK_SIZE), "chunk_size", MAX_CHUNK_SIZE),
        ("FILESTREAM_MAX_FILE_SIZE", "5TiB", "max_file_size", 5 * 1024**4),
        ("FILESTREAM_S3_MAX_RETRIES", "0", "s3_max_retries", 0),
        ("FILESTREAM_S3_MULTIPART_THRESHOLD", "0", "s3_multipart_threshold", 0),
        ("FILESTREAM_S3_PART_SIZE", "5GiB", "s3_part_size", 5 * 1024**3),
        ("FILESTREAM_STANDBY_REPLICAS", "0", "standby_replicas", 0),
        ("FILESTREAM_STANDBY_REPLICAS", "1000", "standby_replicas", 1000),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "0", "processor_results_retention", 0),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "0.5", "processor_results_retention", 0.5),
        ("FILESTREAM_PROCESSOR_RESULTS_RETENTION", "36500", "processor_results_retention", 36500),
        ("FILESTREAM_FILE_HISTORY_RETENTION", "0", "file_history_retention", 0),
        ("FILESTREAM_FILE_HISTORY_RETENTION", "0.0001", "file_history_retention", 0.0001),
    ],
)
def test_the_bounds_themselves_are_allowed(variable, value, field, expected):
    assert getattr(load_settings({variable: value}), field) == expected


def test_the_smallest_part_size_is_allowed():
    smallest = {"FILESTREAM_S3_PART_SIZE": "5MiB", "FILESTREAM_S3_MULTIPART_THRESHOLD": "5MiB"}
    assert load_settings(smallest).s3_part_size == 5 * 1024**2


def test_the_largest_chunk_still_fits_a_kafka_record():
    largest = load_settings({"FILESTREAM_CHUNK_SIZE": str(MAX_CHUNK_SIZE)})
    assert largest.max_message_bytes <= KAFKA_MAX_MESSAGE_BYTES
    assert dataclasses.replace(largest, chunk_size=MAX_CHUNK_SIZE + 1).max_message_bytes > KAFKA_MAX_MESSAGE_BYTES


def whole_number_settings() -> list[str]:
    return [
        s.variable for s in SETTINGS if isinstance(s.parse(s.default), int) and not isinstance(s.parse(s.default), bool)
    ]


def test_every_port_size_and_count_has_a_maximum():
    # Sizes and counts added later are caught too: a setting parsed to a number must refuse an absurd one.
    assert len(whole_number_settings()) >= 10
    for variable in whole_number_settings():
        for absurd in (str(10**30), "-1"):
            with pytest.raises(SettingsError, match=f"^{variable}: expected .* from "):
                load_settings({variable: absurd})


@pytest.mark.parametrize("variable", ["FILESTREAM_SESSION_TIMEOUT", "FILESTREAM_PARTIAL_FILE_TIMEOUT"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_seconds_must_be_positive_and_finite(variable, value):
    with pytest.raises(SettingsError, match=f"{variable}: expected a positive, finite number of seconds"):
        load_settings({variable: value})


def test_the_history_settings_default_to_one_standby_and_ninety_days():
    defaults = load_settings({})
    assert (defaults.standby_replicas, defaults.processor_results_retention, defaults.file_history_retention) == (
        1,
        90,
        90,
    )
