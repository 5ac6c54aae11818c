import dataclasses
from pathlib import Path

import pytest

from settings import SETTINGS, Settings, SettingsError, load_settings, parse_size, settings_table_markdown


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
    from settings import README_TABLE_END, README_TABLE_START

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split(README_TABLE_START, 1)[1].split(README_TABLE_END, 1)[0]
    assert section.strip() == settings_table_markdown(), "run `python settings.py` to regenerate it"


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
