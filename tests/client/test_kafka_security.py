"""The aiokafka options built from the security settings, and the start-up check's verdicts."""

import asyncio
import logging
import socket
import ssl
import struct
from pathlib import Path

import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from client.kafka_security import BrokerAccessError, check_broker_access, client_options, describe_refusal
from devstack.processes import free_port
from devstack.tls import Pki, make_test_pki
from settings import SettingsError, load_settings

PASSWORD = "s3cret-Pa55word"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def sasl_ssl(pki: Pki, **extra: str):
    return load_settings(
        {
            "FILESTREAM_SECURITY_PROTOCOL": "SASL_SSL",
            "FILESTREAM_SASL_USERNAME": "alice",
            "FILESTREAM_SASL_PASSWORD": PASSWORD,
            "FILESTREAM_SSL_CA_FILE": str(pki.ca_file),
            **extra,
        }
    )


def test_plaintext_clients_get_only_the_protocol():
    assert client_options(load_settings({})) == {"security_protocol": "PLAINTEXT"}


def test_sasl_plaintext_has_no_tls_context():
    options = client_options(
        load_settings(
            {
                "FILESTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "FILESTREAM_SASL_MECHANISM": "PLAIN",
                "FILESTREAM_SASL_USERNAME": "alice",
                "FILESTREAM_SASL_PASSWORD": PASSWORD,
            }
        )
    )
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }


def test_sasl_ssl_checks_the_certificate_and_the_host_name(pki: Pki):
    options = client_options(sasl_ssl(pki))
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    context = options["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "filestream test CA"),),)]


def test_the_host_name_check_can_be_turned_off_but_not_the_ca_check(pki: Pki):
    context = client_options(sasl_ssl(pki, FILESTREAM_SSL_CHECK_HOSTNAME="false"))["ssl_context"]
    assert not context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED


def test_printing_or_logging_the_options_never_shows_the_password(pki: Pki, caplog: pytest.LogCaptureFixture):
    options = client_options(sasl_ssl(pki))
    assert options["sasl_plain_password"] == PASSWORD
    caplog.set_level(logging.DEBUG)
    logging.getLogger("tests").info("client options: %s / %r", options, options)
    assert PASSWORD not in repr(options) and PASSWORD not in str(options) and PASSWORD not in caplog.text
    assert "'sasl_plain_password': '********'" in caplog.text


def test_a_client_certificate_with_an_encrypted_key(pki: Pki):
    settings = load_settings(
        {
            "FILESTREAM_SECURITY_PROTOCOL": "SSL",
            "FILESTREAM_SSL_CA_FILE": str(pki.ca_file),
            "FILESTREAM_SSL_CERT_FILE": str(pki.client_cert),
            "FILESTREAM_SSL_KEY_FILE": str(pki.client_key),
            "FILESTREAM_SSL_KEY_PASSWORD_FILE": str(pki.client_key_password_file),
        }
    )
    assert client_options(settings)["ssl_context"].verify_mode is ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "password_file, message",
    [
        (None, "FILESTREAM_SSL_KEY_FILE: the key in .* is encrypted: set FILESTREAM_SSL_KEY_PASSWORD_FILE"),
        ("wrong", "FILESTREAM_SSL_CERT_FILE / FILESTREAM_SSL_KEY_FILE: cannot use the client certificate"),
    ],
)
def test_an_unusable_client_key_is_named_and_never_prompts(
    pki: Pki, tmp_path: Path, password_file: str | None, message: str
):
    environ = {
        "FILESTREAM_SECURITY_PROTOCOL": "SSL",
        "FILESTREAM_SSL_CERT_FILE": str(pki.client_cert),
        "FILESTREAM_SSL_KEY_FILE": str(pki.client_key),
    }
    if password_file:
        (tmp_path / "wrong").write_text("not the password\n")
        environ["FILESTREAM_SSL_KEY_PASSWORD_FILE"] = str(tmp_path / password_file)
    with pytest.raises(SettingsError, match=message):
        client_options(load_settings(environ))


def test_a_ca_file_without_certificates_is_named(tmp_path: Path):
    not_a_ca = tmp_path / "ca.pem"
    not_a_ca.write_text("this is no certificate\n")
    settings = load_settings({"FILESTREAM_SECURITY_PROTOCOL": "SSL", "FILESTREAM_SSL_CA_FILE": str(not_a_ca)})
    with pytest.raises(SettingsError, match=f"FILESTREAM_SSL_CA_FILE: {not_a_ca} holds no usable CA certificate"):
        client_options(settings)


def verification_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.verify_code, error.verify_message = code, message
    return error


@pytest.mark.parametrize(
    "error, expected",
    [
        (SaslAuthenticationFailed("invalid credentials"), "refused the SCRAM-SHA-512 login of user 'alice'"),
        (UnsupportedSaslMechanismError(), "does not offer SASL mechanism SCRAM-SHA-512"),
        (IllegalSaslStateError(), "takes no SASL login on this listener"),
        (GroupAuthorizationFailedError("fs-app"), "does not allow user 'alice' to use consumer group 'fs-app'"),
        (verification_error(19, "self-signed certificate in certificate chain"), "is not trusted"),
        (verification_error(64, "IP address mismatch"), "set FILESTREAM_SSL_CHECK_HOSTNAME=false"),
        (ConnectionResetError(), "not a TLS listener"),
        (KafkaConnectionError("Connection at b:9093 closed"), "closed the connection after the TLS handshake"),
        (ConnectionRefusedError(111, "Connection refused"), None),
        (TimeoutError(), None),
        (KafkaConnectionError("Unable to bootstrap"), None),
    ],
)
def test_describe_refusal(pki: Pki, error: BaseException, expected: str | None):
    described = describe_refusal(error, sasl_ssl(pki), "b:9093")
    if expected is None:
        assert described is None
    else:
        assert described is not None
        assert expected in described and "b:9093" in described and PASSWORD not in described


def plaintext_to(port: int):
    return load_settings({"FILESTREAM_BROKER": f"kafka://127.0.0.1:{port}"})


def test_a_listener_that_hangs_up_at_once_is_a_protocol_mismatch():
    """As a TLS listener does with a plaintext request; asked three times in case the broker was just stopping."""
    connections = []

    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer)
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await check_broker_access(plaintext_to(port), timeout=5)

    with pytest.raises(BrokerAccessError, match="closed the connection at the first request: it expects another"):
        asyncio.run(scenario())
    assert len(connections) == 3


def test_a_tls_client_reset_by_a_plaintext_listener(pki: Pki):
    async def scenario() -> None:
        async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # the ClientHello has arrived
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
            writer.transport.abort()

        server = await asyncio.start_server(reset, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await check_broker_access(sasl_ssl(pki, FILESTREAM_BROKER=f"kafka://127.0.0.1:{port}"), timeout=5)

    with pytest.raises(BrokerAccessError, match="reset the connection in the TLS handshake: it is not a TLS listener"):
        asyncio.run(scenario())


def test_brokers_that_cannot_be_reached_are_left_to_the_clients_retries():
    """Refused or silent: an outage, not a verdict on the settings."""

    async def scenario() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        silent_port = server.sockets[0].getsockname()[1]
        settings = load_settings(
            {"FILESTREAM_BROKER": f"kafka://127.0.0.1:{free_port()},kafka://127.0.0.1:{silent_port}"}
        )
        async with server:
            await check_broker_access(settings, timeout=0.5)

    asyncio.run(scenario())
