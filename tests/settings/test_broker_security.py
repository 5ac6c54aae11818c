"""FILESTREAM_SECURITY_PROTOCOL, SASL and TLS settings: parsing, combinations, and the password kept out of sight."""

from pathlib import Path

import pytest

from settings import SettingsError, config_file_argument, load_settings
from settings.values import Secret

PASSWORD = "correct horse battery staple"


def sasl_ssl(**extra: str) -> dict[str, str]:
    return {
        "FILESTREAM_SECURITY_PROTOCOL": "sasl_ssl",
        "FILESTREAM_SASL_USERNAME": "alice",
        "FILESTREAM_SASL_PASSWORD": PASSWORD,
        **extra,
    }


def test_plaintext_by_default_with_scram_sha_512_ready():
    settings = load_settings({})
    assert (settings.security_protocol, settings.sasl_mechanism) == ("PLAINTEXT", "SCRAM-SHA-512")
    assert not settings.uses_sasl and not settings.uses_tls
    assert settings.ssl_check_hostname is True
    assert not settings.sasl_password


def test_sasl_ssl_with_a_password():
    settings = load_settings(sasl_ssl(FILESTREAM_SASL_MECHANISM="scram-sha-256"))
    assert settings.security_protocol == "SASL_SSL" and settings.uses_sasl and settings.uses_tls
    assert settings.sasl_mechanism == "SCRAM-SHA-256"
    assert settings.sasl_password.reveal() == PASSWORD


def test_the_password_file_loses_one_trailing_newline_only(tmp_path: Path):
    password_file = tmp_path / "password"
    password_file.write_text(f" {PASSWORD}\n")
    settings = load_settings(
        {**sasl_ssl(FILESTREAM_SASL_PASSWORD_FILE=str(password_file)), "FILESTREAM_SASL_PASSWORD": ""}
    )
    assert settings.sasl_password.reveal() == f" {PASSWORD}"
    assert settings.sasl_password_file == password_file


def test_the_password_never_shows_in_repr_str_or_errors(tmp_path: Path):
    settings = load_settings(sasl_ssl())
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert "Secret('********')" in repr(settings)
    assert PASSWORD not in f"{settings.sasl_password}"
    with pytest.raises(SettingsError) as refused:
        load_settings(sasl_ssl(FILESTREAM_SASL_PASSWORD_FILE=str(tmp_path / "missing")))
    assert PASSWORD not in str(refused.value)


def test_secrets_compare_by_value_without_showing_it():
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and Secret("a") != "a"
    assert repr(Secret("")) == "Secret('')" and not Secret("")


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"FILESTREAM_SECURITY_PROTOCOL": "TLS"}, "FILESTREAM_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL"),
        ({"FILESTREAM_SASL_MECHANISM": "GSSAPI"}, "FILESTREAM_SASL_MECHANISM: expected one of PLAIN"),
        (
            {"FILESTREAM_SECURITY_PROTOCOL": "SASL_SSL", "FILESTREAM_SASL_PASSWORD": "x"},
            "FILESTREAM_SECURITY_PROTOCOL is SASL_SSL: set FILESTREAM_SASL_USERNAME",
        ),
        (
            {"FILESTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "FILESTREAM_SASL_USERNAME": "alice"},
            "is SASL_PLAINTEXT: set FILESTREAM_SASL_PASSWORD or FILESTREAM_SASL_PASSWORD_FILE",
        ),
        (
            {"FILESTREAM_SASL_USERNAME": "alice", "FILESTREAM_SASL_PASSWORD": "x"},
            "a SASL user is set but FILESTREAM_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        ({"FILESTREAM_SSL_CA_FILE": "/etc/hostname"}, "FILESTREAM_SSL_CA_FILE is set but FILESTREAM_SECURITY_PROTOCOL"),
        (
            {"FILESTREAM_SECURITY_PROTOCOL": "SSL", "FILESTREAM_SSL_CA_FILE": "/nonexistent/ca.pem"},
            "FILESTREAM_SSL_CA_FILE: no such file: /nonexistent/ca.pem",
        ),
        (
            {"FILESTREAM_SECURITY_PROTOCOL": "SSL", "FILESTREAM_SSL_CERT_FILE": "/nonexistent/client.pem"},
            "FILESTREAM_SSL_CERT_FILE: no such file",
        ),
        (
            {"FILESTREAM_SECURITY_PROTOCOL": "SSL", "FILESTREAM_SSL_KEY_FILE": "/etc/hostname"},
            "FILESTREAM_SSL_KEY_FILE is set: set FILESTREAM_SSL_CERT_FILE",
        ),
        (
            {"FILESTREAM_SECURITY_PROTOCOL": "SSL", "FILESTREAM_SSL_KEY_PASSWORD_FILE": "/etc/hostname"},
            "FILESTREAM_SSL_KEY_PASSWORD_FILE is set: set FILESTREAM_SSL_CERT_FILE",
        ),
        ({"FILESTREAM_SSL_CHECK_HOSTNAME": "maybe"}, "FILESTREAM_SSL_CHECK_HOSTNAME"),
    ],
)
def test_combinations_that_cannot_work_name_the_variable(environ, message):
    with pytest.raises(SettingsError) as refused:
        load_settings(environ)
    assert message in str(refused.value)


def test_password_and_password_file_together_are_refused(tmp_path: Path):
    password_file = tmp_path / "password"
    password_file.write_text("x")
    with pytest.raises(SettingsError, match="FILESTREAM_SASL_PASSWORD or FILESTREAM_SASL_PASSWORD_FILE, not both"):
        load_settings(sasl_ssl(FILESTREAM_SASL_PASSWORD_FILE=str(password_file)))


@pytest.mark.parametrize("content, problem", [("", "is empty"), ("\n", "is empty"), (None, "cannot read")])
def test_an_unusable_password_file_is_named(tmp_path: Path, content: str | None, problem: str):
    password_file = tmp_path / "password"
    if content is not None:
        password_file.write_text(content)
    environ = {**sasl_ssl(FILESTREAM_SASL_PASSWORD_FILE=str(password_file)), "FILESTREAM_SASL_PASSWORD": ""}
    with pytest.raises(SettingsError, match=f"FILESTREAM_SASL_PASSWORD_FILE: .*{problem}"):
        load_settings(environ)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-A", "app", "upload", "--config", "lab.config", "data"], "lab.config"),
        (["-A", "app", "download", "out", "--config=/etc/omsi.config"], "/etc/omsi.config"),
        (["-A", "app", "upload", "data"], None),
        (["-A", "app", "upload", "--", "--config", "x"], None),
        (["-A", "app", "upload", "--config"], None),
    ],
)
def test_config_file_argument(argv, expected):
    assert config_file_argument(argv) == expected
