"""Throw-away certificates for a TLS test broker, made with the ``openssl`` command line.

:func:`make_test_pki` writes, into a directory of its own, a CA and a broker certificate for
``127.0.0.1`` and ``localhost`` (subject alternative names, so clients check host names as
in production), the broker's PEM key store as Kafka takes it (``ssl.keystore.type=PEM``:
the PKCS#8 key followed by its certificate chain), and a client certificate whose key is
encrypted with a password kept in a file, for mutual TLS.  EC P-256 keys: generated in
milliseconds, and accepted by both Java and OpenSSL.  The certificates live two days.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from errors import DevStackError

BROKER_HOSTS = ("127.0.0.1", "localhost")
CLIENT_COMMON_NAME = "filestream-client"
VALID_DAYS = "2"
_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


class OpenSSLUnavailable(DevStackError, RuntimeError):
    """The ``openssl`` command is missing or refused to make a certificate."""


@dataclass(frozen=True)
class Pki:
    """The files of one CA and the certificates it signed."""

    directory: Path
    ca_file: Path
    broker_keystore: Path
    client_cert: Path
    client_key: Path
    client_key_password_file: Path

    @property
    def client_principal(self) -> str:
        """The principal Kafka's default principal builder gives a client presenting the client certificate."""
        return f"User:CN={CLIENT_COMMON_NAME}"


def make_test_pki(directory: Path, ca_name: str = "filestream test CA") -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    _openssl(
        "req", "-x509", *_EC_KEY, "-nodes", "-keyout", ca_key, "-out", ca_file, "-days", VALID_DAYS,
        "-subj", f"/CN={ca_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    broker_key, broker_cert = directory / "broker.key", directory / "broker.pem"
    san = ",".join(f"IP:{host}" if host[0].isdigit() else f"DNS:{host}" for host in BROKER_HOSTS)
    _sign(ca_file, ca_key, broker_key, broker_cert, "localhost", f"subjectAltName={san}", "serverAuth")
    broker_keystore = directory / "broker-keystore.pem"
    broker_keystore.write_bytes(broker_key.read_bytes() + broker_cert.read_bytes() + ca_file.read_bytes())

    plain_client_key, client_cert = directory / "client-plain.key", directory / "client.pem"
    _sign(ca_file, ca_key, plain_client_key, client_cert, CLIENT_COMMON_NAME, None, "clientAuth")
    password_file, client_key = directory / "client-key.password", directory / "client.key"
    password_file.write_text(secrets.token_urlsafe(16) + "\n")  # as an editor saves it: clients strip the newline
    _openssl(
        "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plain_client_key, "-out", client_key,
        "-passout", f"file:{password_file}",
    )  # fmt: skip
    plain_client_key.unlink()
    return Pki(directory, ca_file, broker_keystore, client_cert, client_key, password_file)


def _sign(
    ca_file: Path, ca_key: Path, key: Path, cert: Path, common_name: str, extension: str | None, usage: str
) -> None:
    extensions = ["-addext", "basicConstraints=CA:FALSE", "-addext", f"extendedKeyUsage={usage}"]
    if extension:
        extensions += ["-addext", extension]
    _openssl(
        "req", "-x509", "-CA", ca_file, "-CAkey", ca_key, *_EC_KEY, "-nodes", "-keyout", key, "-out", cert,
        "-days", VALID_DAYS, "-subj", f"/CN={common_name}", *extensions,
    )  # fmt: skip


def _openssl(*args: str | Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OpenSSLUnavailable("making test certificates needs the `openssl` command (Debian package openssl)")
    result = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OpenSSLUnavailable(f"openssl {args[0]} failed (exit {result.returncode}): {result.stderr.strip()}")
