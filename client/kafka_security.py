"""Broker authentication and TLS for every Kafka client filestream makes, from the ``FILESTREAM_*`` settings.

:func:`client_options` turns the settings into the keyword arguments every aiokafka client
takes (``security_protocol``, ``ssl_context``, ``sasl_mechanism``, ``sasl_plain_username``,
``sasl_plain_password``): the upload command's producer, the admin client that creates the
topics, the demo's consumer; app.py hands the same values to Faust as its
``broker_credentials``.  The TLS context is aiokafka's ``create_ssl_context``.

:func:`check_broker_access` is the start-up check.  With credentials or TLS settings the
brokers refuse, aiokafka logs the reason and raises only "Unable to bootstrap", and Faust's
consumer retries that for ever; so the worker and the upload command first open one
connection with the same options and, when the brokers refuse it for a reason no retry
cures, stop with one line saying what is wrong, at which broker, and which setting.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.metadata import MetadataRequest

from errors import ClientSideError
from settings import PREFIX, Settings, SettingsError
from settings.sources import read_secret_file

log = logging.getLogger(__name__)

# A refused handshake can also be a broker going down at that moment: ask again before concluding.
HANDSHAKE_ATTEMPTS = 3
HANDSHAKE_PAUSE = 0.5
# OpenSSL's verify code for a certificate that does not name the host connected to.
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64


class BrokerAccessError(ClientSideError, RuntimeError):
    """The brokers refuse this client's credentials or TLS settings: no retry can help."""


class KafkaClientOptions(dict):
    """Keyword arguments of an aiokafka client; printing them never shows the password."""

    def __repr__(self) -> str:
        shown = {key: "********" if key == "sasl_plain_password" else value for key, value in self.items()}
        return f"KafkaClientOptions({shown!r})"

    __str__ = __repr__


def client_options(settings: Settings) -> KafkaClientOptions:
    """The security options of every aiokafka client; SettingsError when a TLS file cannot be used."""
    options = KafkaClientOptions(security_protocol=settings.security_protocol)
    if settings.uses_tls:
        options["ssl_context"] = tls_context(settings)
    if settings.uses_sasl:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.reveal()
    return options


class _KeyPasswordMissing(ClientSideError):
    """OpenSSL asked for the password of an encrypted key that was given none."""


def _no_key_password() -> str:
    # Without a password callback OpenSSL would prompt on the terminal, and a worker would hang.
    raise _KeyPasswordMissing


def tls_context(settings: Settings) -> ssl.SSLContext:
    """aiokafka's context: the brokers' CA (or the system's), the host name check, the client certificate."""
    ca_file = settings.ssl_ca_file
    try:
        context = create_ssl_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(f"{PREFIX}SSL_CA_FILE: {ca_file} holds no usable CA certificate ({_reason(exc)})") from None
    # Off only on request; the certificate must still be signed by the CA.
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_cert_file is not None:
        # The chain is loaded here rather than by create_ssl_context so that an error names its own file.
        password_file = settings.ssl_key_password_file
        password = (
            read_secret_file(password_file, f"{PREFIX}SSL_KEY_PASSWORD_FILE") if password_file else _no_key_password
        )
        key_file = settings.ssl_key_file or settings.ssl_cert_file
        try:
            context.load_cert_chain(settings.ssl_cert_file, settings.ssl_key_file, password)
        except _KeyPasswordMissing:
            raise SettingsError(
                f"{PREFIX}SSL_KEY_FILE: the key in {key_file} is encrypted: set {PREFIX}SSL_KEY_PASSWORD_FILE"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                f"{PREFIX}SSL_CERT_FILE / {PREFIX}SSL_KEY_FILE: cannot use the client certificate "
                f"{settings.ssl_cert_file} with the key in {key_file} ({_reason(exc)}): a wrong "
                f"{PREFIX}SSL_KEY_PASSWORD_FILE, a key of another certificate, or not PEM"
            ) from None
    return context


async def check_broker_access(
    settings: Settings,
    options: KafkaClientOptions | None = None,
    *,
    group: str | None = None,
    timeout: float = 15.0,
) -> None:
    """Log in to a bootstrap server as the clients will; BrokerAccessError if the brokers refuse these settings.

    Returns once one broker accepted the connection and answered a metadata request (and,
    with ``group``, told where that consumer group's coordinator is: an ACL refusing the
    group would otherwise leave a Faust worker waiting without a word).  A broker that
    cannot be reached (refused, timed out) decides nothing: the clients' own retries ride out
    an outage as before.  Takes at most about ``timeout`` seconds per broker.
    """
    options = options if options is not None else client_options(settings)
    refusals: list[str] = []
    for address in settings.bootstrap_servers:
        host, _, port = address.rpartition(":")
        for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
            try:
                await asyncio.wait_for(_log_in(host, int(port), options, group, timeout), timeout)
                return
            except (TimeoutError, OSError, KafkaError) as exc:
                refusal = describe_refusal(exc, settings, address)
                if refusal is None:
                    log.debug("start-up check: broker %s not reached (%s)", address, _reason(exc))
                    break
                if not _may_be_transient(exc) or attempt == HANDSHAKE_ATTEMPTS:
                    refusals.append(refusal)
                    break
                await asyncio.sleep(HANDSHAKE_PAUSE)
    if refusals:
        raise BrokerAccessError(refusals[0])


async def exit_unless_brokers_accept(
    settings: Settings, options: KafkaClientOptions, program: str, *, group: str | None = None
) -> None:
    """:func:`check_broker_access`; when the brokers refuse, end the process with the reason as its one last line."""
    try:
        await check_broker_access(settings, options, group=group)
    except BrokerAccessError as exc:
        raise SystemExit(f"{program}: {exc}") from None


async def _log_in(host: str, port: int, options: KafkaClientOptions, group: str | None, timeout: float) -> None:
    connection = await create_conn(
        host, port, client_id="filestream-access-check", request_timeout_ms=int(timeout * 1000), **options
    )
    try:
        # A listener expecting a SASL login or TLS closes the connection at the first real request.
        await connection.send(MetadataRequest([]))
        if group is not None:
            answer = await connection.send(FindCoordinatorRequest(group, 0))
            # Other errors (no coordinator yet) are for the consumer's own retries.
            if answer.error_code == GroupAuthorizationFailedError.errno:
                raise GroupAuthorizationFailedError(group)
    finally:
        connection.close()


def _may_be_transient(error: BaseException) -> bool:
    """A connection closed or reset in the handshake: a protocol mismatch, or a broker stopping just then."""
    return isinstance(error, KafkaConnectionError | ConnectionResetError)


def describe_refusal(error: BaseException, settings: Settings, address: str) -> str | None:
    """One line on why ``address`` refused the connection and which setting to fix; None if it was not reached."""
    protocol = f"{PREFIX}SECURITY_PROTOCOL is {settings.security_protocol}"
    if isinstance(error, SaslAuthenticationFailed):
        password = f"{PREFIX}SASL_PASSWORD_FILE" if settings.sasl_password_file else f"{PREFIX}SASL_PASSWORD"
        return (
            f"broker {address} refused the {settings.sasl_mechanism} login of user {settings.sasl_username!r}: "
            f"wrong password, unknown user, or no {settings.sasl_mechanism} credentials for that user "
            f"(check {PREFIX}SASL_USERNAME, {password}, {PREFIX}SASL_MECHANISM)"
        )
    if isinstance(error, UnsupportedSaslMechanismError):
        return (
            f"broker {address} does not offer SASL mechanism {settings.sasl_mechanism} on this listener "
            f"(check {PREFIX}SASL_MECHANISM)"
        )
    if isinstance(error, GroupAuthorizationFailedError):
        who = f"user {settings.sasl_username!r}" if settings.uses_sasl else "this client"
        return (
            f"broker {address} does not allow {who} to use consumer group {error.args[0]!r} "
            f"(GROUP_AUTHORIZATION_FAILED): an ACL must allow it READ on that group ({PREFIX}APP_ID)"
        )
    if isinstance(error, IllegalSaslStateError):
        return f"broker {address} takes no SASL login on this listener ({protocol}; is it a PLAINTEXT or SSL port?)"
    if isinstance(error, ssl.SSLCertVerificationError):
        if error.verify_code in (X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH):
            return (
                f"the TLS certificate of broker {address} is not for that host ({error.verify_message}): "
                f"connect by a name the certificate holds, or set {PREFIX}SSL_CHECK_HOSTNAME=false"
            )
        trusted = f"{PREFIX}SSL_CA_FILE {settings.ssl_ca_file}" if settings.ssl_ca_file else "the system's CAs"
        return (
            f"the TLS certificate of broker {address} is not trusted ({error.verify_message}): it is not signed by "
            f"{trusted} (check {PREFIX}SSL_CA_FILE)"
        )
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake with broker {address} failed ({_reason(error)}; check {PREFIX}SSL_CERT_FILE, {protocol})"
    if isinstance(error, ConnectionResetError) and settings.uses_tls:
        return (
            f"broker {address} reset the connection in the TLS handshake: it is not a TLS listener "
            f"({protocol}; is it a PLAINTEXT or SASL_PLAINTEXT port?)"
        )
    if isinstance(error, KafkaConnectionError) and "closed" in str(error):
        if settings.uses_tls:
            return (
                f"broker {address} closed the connection after the TLS handshake: it may require a client "
                f"certificate ({PREFIX}SSL_CERT_FILE) or another protocol ({protocol})"
            )
        return (
            f"broker {address} closed the connection at the first request: it expects another protocol, "
            f"probably TLS ({protocol}; the listener may want SSL or SASL_SSL)"
        )
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    return str(error) or type(error).__name__
