"""OpenMSIStream configuration files as a source of filestream's settings (files written here; the ones
OpenMSIStream 1.8.8 ships are read in tests/e2e/test_kafka_security.py)."""

import logging
import os
from pathlib import Path

import pytest

from client.openmsistream_config import read_openmsistream_config
from settings import SettingsError, load_settings

SASL_CONFIG = """\
[broker]
bootstrap.servers = $LAB_BOOTSTRAP
sasl.mechanism    = SCRAM-SHA-512
security.protocol = sasl_ssl
sasl.username     = $LAB_USER
sasl.password     = ${LAB_PASSWORD}
ssl.ca.location   = {ca}
client.id         = lab-7

[producer]
batch.size       = 2000000
linger.ms        = 100
compression.type = lz4
key.serializer   = StringSerializer
value.serializer = DataFileChunkSerializer

[consumer]
group.id           = create_new
auto.offset.reset  = earliest
enable.auto.commit = False
session.timeout.ms = 45000
key.deserializer   = StringDeserializer
value.deserializer = DataFileChunkDeserializer

[s3]
access_key_id = $ACCESS_KEY_ID
secret_key_id = $SECRET_KEY_ID
endpoint_url  = minio.lab:9000
region        = $REGION
bucket_name   = lab-data

[kafkacrypto]
node_id = lab_node
"""

LAB_ENV = {
    "LAB_BOOTSTRAP": "k1.lab:9093,SASL_SSL://k2.lab:9093",
    "LAB_USER": "lab-uploader",
    "LAB_PASSWORD": "50%-secret",
    "ACCESS_KEY_ID": "AKIALAB",
    "SECRET_KEY_ID": "lab-secret-key",
    "REGION": "eu-west-1",
}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("a CA\n")
    path = tmp_path / "lab.config"
    path.write_text(SASL_CONFIG.replace("{ca}", str(tmp_path / "ca.pem")))
    return path


def test_the_broker_security_and_s3_map_onto_filestream(config_file: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    environ = dict(LAB_ENV)
    settings = load_settings(environ, config_file=str(config_file))
    assert settings.broker == ("kafka://k1.lab:9093", "kafka://k2.lab:9093")
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (settings.sasl_username, settings.sasl_password.reveal()) == ("lab-uploader", "50%-secret")
    assert settings.ssl_ca_file == config_file.parent / "ca.pem"
    assert (settings.session_timeout, settings.s3_bucket, settings.config) == (45.0, "lab-data", config_file)
    assert environ == LAB_ENV, "the caller's mapping is left alone"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [f"{config_file}: not understood, not used: [broker] client.id, [kafkacrypto] node_id"]
    assert "[producer] batch.size" in caplog.text and "[consumer] group.id" in caplog.text  # handled: info only
    assert "50%-secret" not in caplog.text


def test_the_s3_section_becomes_the_standard_aws_variables(config_file: Path):
    found = read_openmsistream_config(config_file, LAB_ENV)
    assert found.aws == {
        "AWS_ACCESS_KEY_ID": "AKIALAB",
        "AWS_SECRET_ACCESS_KEY": "lab-secret-key",
        "AWS_ENDPOINT_URL_S3": "https://minio.lab:9000",  # OpenMSIStream's client adds https:// too
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert found.origins["AWS_ENDPOINT_URL_S3"] == f"[s3] endpoint_url of {config_file}"


def test_the_aws_variables_reach_the_process_environment_unless_set(config_file: Path, monkeypatch: pytest.MonkeyPatch):
    for name, value in LAB_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores whatever load_settings sets
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("FILESTREAM_CONFIG", str(config_file))
    load_settings()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIALAB" and os.environ["AWS_SECRET_ACCESS_KEY"] == "lab-secret-key"
    assert os.environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


def test_explicit_variables_win_over_the_file(config_file: Path, tmp_path: Path):
    password_file = tmp_path / "password"
    password_file.write_text("from-the-file\n")
    environ = {
        **LAB_ENV,
        "FILESTREAM_BROKER": "kafka://override:9093",
        "FILESTREAM_SASL_USERNAME": "operator",
        "FILESTREAM_SASL_PASSWORD_FILE": str(password_file),
        "FILESTREAM_S3_BUCKET": "other-bucket",
        "AWS_PROFILE": "lab",
    }
    settings = load_settings(environ, config_file=str(config_file))
    assert settings.broker == ("kafka://override:9093",)
    assert (settings.sasl_username, settings.sasl_password.reveal()) == ("operator", "from-the-file")
    assert settings.security_protocol == "SASL_SSL"  # not set in the environment: from the file
    assert settings.s3_bucket == "other-bucket"
    assert "AWS_ACCESS_KEY_ID" not in read_openmsistream_config(config_file, environ).aws_applicable(environ)


def test_filestream_config_in_the_environment(config_file: Path):
    settings = load_settings({**LAB_ENV, "FILESTREAM_CONFIG": str(config_file)})
    assert settings.sasl_username == "lab-uploader" and settings.config == config_file


def test_a_broker_value_naming_an_unset_variable_is_an_error(config_file: Path):
    environ = {name: value for name, value in LAB_ENV.items() if name != "LAB_PASSWORD"}
    with pytest.raises(SettingsError) as refused:
        load_settings(environ, config_file=str(config_file))
    message = str(refused.value)
    assert message.startswith("FILESTREAM_CONFIG / --config: ")
    assert "[broker] sasl.password = ${LAB_PASSWORD}, but the environment variable LAB_PASSWORD is not set" in message


def test_an_s3_value_naming_an_unset_variable_is_left_out_and_named(config_file: Path):
    environ = {name: value for name, value in LAB_ENV.items() if name != "SECRET_KEY_ID"}
    found = read_openmsistream_config(config_file, environ)
    assert "AWS_SECRET_ACCESS_KEY" not in found.aws
    assert "[s3] secret_key_id ($SECRET_KEY_ID is not set)" in found.not_understood


def test_a_bad_value_from_the_file_says_where_it_came_from(tmp_path: Path):
    config = tmp_path / "bad.config"
    config.write_text("[broker]\nbootstrap.servers = k1:9092\nsecurity.protocol = SASL_SSL\nsasl.mechanism = GSSAPI\n")
    with pytest.raises(SettingsError) as refused:
        load_settings({}, config_file=str(config))
    assert "FILESTREAM_SASL_MECHANISM: expected one of PLAIN" in str(refused.value)
    assert f"FILESTREAM_SASL_MECHANISM comes from [broker] sasl.mechanism of {config}" in str(refused.value)


@pytest.mark.parametrize(
    "content, message",
    [(None, "cannot read"), ("no section header\n", "is not an OpenMSIStream configuration file")],
)
def test_a_file_that_cannot_be_read_is_named(tmp_path: Path, content: str | None, message: str):
    config = tmp_path / "x.config"
    if content is not None:
        config.write_text(content)
    with pytest.raises(SettingsError, match=f"FILESTREAM_CONFIG / --config: .*{message}"):
        load_settings({"FILESTREAM_CONFIG": str(config)})


def test_default_section_keys_are_named_once_and_node_id_is_skipped_as_openmsistream_does(tmp_path: Path):
    config = tmp_path / "x.config"
    config.write_text(
        "[DEFAULT]\nlog_level = 20\n\n[broker]\nbootstrap.servers = k1:9092\nnode_id = n1\n\n"
        "[heartbeat]\nlinger.ms = 5\n"
    )
    found = read_openmsistream_config(config, {})
    assert found.settings == {"broker": "kafka://k1:9092"}
    assert found.not_understood == ["[DEFAULT] log_level", "[heartbeat] linger.ms"]


def test_hostname_check_from_librdkafkas_endpoint_identification(tmp_path: Path):
    config = tmp_path / "x.config"
    config.write_text("[broker]\nssl.endpoint.identification.algorithm = none\n")
    assert read_openmsistream_config(config, {}).settings == {"ssl_check_hostname": "false"}
