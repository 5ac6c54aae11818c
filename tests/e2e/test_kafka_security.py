"""Broker authentication and TLS end to end: a real Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512 and
SCRAM-SHA-256 users), a mutual-TLS listener and Kafka's StandardAuthorizer, certificates made by openssl.

Good credentials move files through the upload command and a worker; wrong ones, a plaintext client on
the TLS port and a foreign CA end both with one clear line and a non-zero exit well within a minute; an
ACL without WRITE stops the upload naming the topic.  OpenMSIStream configuration files, the ones
OpenMSIStream 1.8.8 ships and a SASL one, supply the settings of a worker and of the upload command.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from client.openmsistream_config import read_openmsistream_config
from devstack.kafka import KafkaCluster, Listener, ScramUser, authorizer_properties, tls_listener_properties
from devstack.processes import child_env, free_port
from devstack.stack import S3Server
from devstack.testing import pipeline_env, poll, wait_for_files
from devstack.tls import Pki, make_test_pki
from devstack.worker import FAUST, PROJECT_ROOT, Worker
from settings import load_settings
from tests.e2e.test_openmsistream import openmsistream_venv  # noqa: F401  (the fixture, reused)

pytestmark = pytest.mark.e2e

# Passwords drawn per run, so "never printed" is checked against values no log could hold by chance.
ADMIN = ScramUser("admin", secrets.token_urlsafe(12))
ALICE = ScramUser("alice", secrets.token_urlsafe(12))  # SCRAM-SHA-512; ACLs allow everything on topics and groups
CAROL = ScramUser("carol", secrets.token_urlsafe(12), "SCRAM-SHA-256")  # the same ACLs
BOB = ScramUser("bob", secrets.token_urlsafe(12))  # may describe, read and create topics; not write them, no group
# A failure must be reported within this many seconds; a process still running after HANG is a hang.
BOUND = 60
HANG = 90


@dataclass
class SecuredStack:
    kafka: KafkaCluster
    s3: S3Server
    pki: Pki
    foreign_pki: Pki

    @property
    def sasl_bootstrap(self) -> str:
        return self.kafka.listener_bootstrap("SASL_SSL")

    @property
    def mtls_bootstrap(self) -> str:
        return self.kafka.listener_bootstrap("MTLS")

    def env(self) -> dict[str, str]:
        """What tests.harness.pipeline_env asks of a stack: the broker (the SASL_SSL listener) and S3."""
        return {
            "FILESTREAM_BROKER": f"kafka://{self.sasl_bootstrap}",
            "FILESTREAM_DEV_BROKER": "false",
            **self.s3.env(),
        }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredStack]:
    work = tmp_path_factory.mktemp("secured-kafka")
    pki, foreign_pki = make_test_pki(work / "pki"), make_test_pki(work / "foreign-pki", ca_name="some other CA")
    sasl = Listener("SASL_SSL", "SASL_SSL", (free_port(),))
    mtls = Listener("MTLS", "SSL", (free_port(),))
    kafka = KafkaCluster(
        work,
        listeners=[sasl, mtls],
        extra_properties={
            **tls_listener_properties(sasl, pki.broker_keystore),
            **tls_listener_properties(mtls, pki.broker_keystore, client_ca=pki.ca_file),
            **authorizer_properties([ADMIN.principal]),
        },
        scram_credentials=[user.storage_credential for user in (ADMIN, ALICE, CAROL, BOB)],
    )
    s3 = S3Server(work)
    with kafka:
        everything = ["--operation", "All", "--topic", "*", "--group", "*"]
        trusted = [ALICE.principal, CAROL.principal, pki.client_principal]
        kafka.run_tool("acls", ["--add", *(f"--allow-principal={p}" for p in trusted), *everything])
        no_write = ["--operation", "Describe", "--operation", "Read", "--operation", "Create", "--topic", "*"]
        kafka.run_tool("acls", ["--add", f"--allow-principal={BOB.principal}", *no_write])
        s3.start()
        try:
            yield SecuredStack(kafka, s3, pki, foreign_pki)
        finally:
            s3.stop()


def sasl_env(user: ScramUser, stack: SecuredStack) -> dict[str, str]:
    return {
        "FILESTREAM_SECURITY_PROTOCOL": "SASL_SSL",
        "FILESTREAM_SASL_MECHANISM": user.mechanism,
        "FILESTREAM_SASL_USERNAME": user.name,
        "FILESTREAM_SASL_PASSWORD": user.password,
        "FILESTREAM_SSL_CA_FILE": str(stack.pki.ca_file),
    }


def run_upload(env: Mapping[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [FAUST, "-A", "app", "upload", *args],
        cwd=PROJECT_ROOT,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    return result, time.monotonic() - started


def run_worker_until_exit(env: Mapping[str, str], data_dir: Path) -> tuple[int, str, float]:
    worker = Worker(env, data_dir).start()
    assert worker.process is not None
    started = time.monotonic()
    try:
        status = worker.process.popen.wait(timeout=HANG)
    finally:
        worker.stop()
    return status, worker.log_tail(400), time.monotonic() - started


def sample_files(directory: Path) -> dict[str, bytes]:
    files = {
        "run-1/frame.bin": os.urandom(2 * 1024**2 + 123),  # three chunks
        "run-1/notes.txt": b"a secured run\n",
        "scan.csv": b"t,v\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(5000)),
    }
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return files


def started_worker(env: Mapping[str, str], data_dir: Path) -> Worker:
    worker = Worker(env, data_dir).start()
    try:
        worker.wait_ready(timeout=120)
    except BaseException:
        worker.stop()
        raise
    return worker


def wait_valid_in_s3(worker: Worker, file_ids: set[str]) -> None:
    def valid() -> bool:
        try:
            rows = worker.get_json("/filestream/transfers/?state=valid&limit=1000")["transfers"]
        except OSError:
            return False
        return file_ids <= {row["file_id"] for row in rows}

    poll(valid, 60, f"valid S3 transfers of {sorted(file_ids)}")


# -- (a) the right credentials ---------------------------------------------------------------------


def test_scram_users_move_files_over_sasl_ssl(secured: SecuredStack, tmp_path: Path):
    """The worker logs in as alice (SCRAM-SHA-512, password from a file); alice and carol (SCRAM-SHA-256) upload."""
    password_file = tmp_path / "alice.password"
    password_file.write_text(ALICE.password + "\n")
    env = pipeline_env(secured, tmp_path, **sasl_env(ALICE, secured))
    worker_env = {**env, "FILESTREAM_SASL_PASSWORD": "", "FILESTREAM_SASL_PASSWORD_FILE": str(password_file)}
    worker = started_worker(worker_env, tmp_path / "worker-data")
    try:
        uploads = {}
        for user in (ALICE, CAROL):
            source_dir = tmp_path / f"from-{user.name}"
            uploads[user.name] = sample_files(source_dir)
            upload_env = {**env, **sasl_env(user, secured), "FILESTREAM_DATA_DIR": str(tmp_path / f"up-{user.name}")}
            result, _ = run_upload(upload_env, str(source_dir), "--source", user.name)
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"{len(uploads[user.name])} file(s) sent" in result.stdout
            assert user.password not in result.stdout + result.stderr
        output = Path(env["FILESTREAM_OUTPUT_DIR"])
        for name, files in uploads.items():
            wait_for_files(output / name, files, workers=[worker])
        wait_valid_in_s3(worker, {f"{name}/{path}" for name, files in uploads.items() for path in files})
        assert worker.process is not None and worker.process.alive()
        assert ALICE.password not in worker.log_tail(100_000)
    finally:
        worker.stop()


def test_a_client_certificate_over_mutual_tls(secured: SecuredStack, tmp_path: Path):
    """SSL with the client's certificate and its encrypted key; without the certificate, a clear refusal."""
    env = pipeline_env(
        secured,
        tmp_path,
        FILESTREAM_BROKER=f"kafka://{secured.mtls_bootstrap}",
        FILESTREAM_SECURITY_PROTOCOL="SSL",
        FILESTREAM_SSL_CA_FILE=str(secured.pki.ca_file),
        FILESTREAM_SSL_CERT_FILE=str(secured.pki.client_cert),
        FILESTREAM_SSL_KEY_FILE=str(secured.pki.client_key),
        FILESTREAM_SSL_KEY_PASSWORD_FILE=str(secured.pki.client_key_password_file),
    )
    source_dir = tmp_path / "files"
    files = sample_files(source_dir)
    result, _ = run_upload(env, str(source_dir), "--source", "mtls")
    assert result.returncode == 0 and f"{len(files)} file(s) sent" in result.stdout, result.stdout + result.stderr

    without = {
        **env,
        "FILESTREAM_SSL_CERT_FILE": "",
        "FILESTREAM_SSL_KEY_FILE": "",
        "FILESTREAM_SSL_KEY_PASSWORD_FILE": "",
    }
    result, elapsed = run_upload(without, str(source_dir), "--source", "mtls")
    assert result.returncode == 1 and elapsed < BOUND
    assert "closed the connection after the TLS handshake: it may require a client certificate" in last_line(result)


# -- (b)-(e) the wrong ones: one clear line, a non-zero exit, within the bound --------------------------


def last_line(result: subprocess.CompletedProcess | str) -> str:
    text = result if isinstance(result, str) else result.stdout + result.stderr
    return [line for line in text.splitlines() if line.strip()][-1]


REFUSALS = {
    "wrong-password": (
        {"FILESTREAM_SASL_PASSWORD": "not-alices-password"},
        "refused the SCRAM-SHA-512 login of user 'alice': wrong password, unknown user",
    ),
    "unknown-user": (
        {"FILESTREAM_SASL_USERNAME": "mallory"},
        "refused the SCRAM-SHA-512 login of user 'mallory'",
    ),
    "plaintext-to-tls": (
        {
            "FILESTREAM_SECURITY_PROTOCOL": "PLAINTEXT",
            "FILESTREAM_SASL_USERNAME": "",
            "FILESTREAM_SASL_PASSWORD": "",
            "FILESTREAM_SSL_CA_FILE": "",
        },
        "closed the connection at the first request: it expects another protocol, probably TLS "
        "(FILESTREAM_SECURITY_PROTOCOL is PLAINTEXT",
    ),
    "foreign-ca": (
        {"FILESTREAM_SSL_CA_FILE": "{foreign_ca}"},
        "is not trusted (self-signed certificate in certificate chain): it is not signed by FILESTREAM_SSL_CA_FILE",
    ),
}


@pytest.mark.parametrize("program", ["upload", "upload --watch", "worker"])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_credentials_end_with_one_clear_line(secured: SecuredStack, tmp_path: Path, case: str, program: str):
    overrides, expected = REFUSALS[case]
    overrides = {name: value.format(foreign_ca=secured.foreign_pki.ca_file) for name, value in overrides.items()}
    env = {**pipeline_env(secured, tmp_path, **sasl_env(ALICE, secured)), **overrides}
    if program.startswith("upload"):
        (tmp_path / "files").mkdir()
        if "--watch" not in program:  # a watch must fail at start, not once a first file has settled
            sample_files(tmp_path / "files")
        result, elapsed = run_upload(env, str(tmp_path / "files"), "--source", "refused", *program.split()[1:])
        status, output = result.returncode, result.stdout + result.stderr
        prefix = "filestream upload: "
    else:
        status, output, elapsed = run_worker_until_exit(env, tmp_path / "worker-data")
        prefix = "filestream: "
    line = last_line(output)
    assert status != 0 and elapsed < BOUND, f"exit {status} after {elapsed:.1f}s:\n{output[-3000:]}"
    assert line.startswith(f"{prefix}") and expected in line, output[-3000:]
    assert secured.sasl_bootstrap in line  # which broker
    assert "Traceback" not in output
    assert ALICE.password not in output


# -- (f) the authorizer: no WRITE on the chunk topic --------------------------------------------------


def test_a_user_without_write_on_the_chunk_topic_is_told_which_topic(secured: SecuredStack, tmp_path: Path):
    env = pipeline_env(secured, tmp_path, **sasl_env(BOB, secured))
    sample_files(tmp_path / "files")
    result, elapsed = run_upload(env, str(tmp_path / "files"), "--source", "bob")
    assert result.returncode == 1 and elapsed < BOUND, result.stdout + result.stderr
    assert last_line(result) == (
        f"filestream upload: broker {secured.sasl_bootstrap} does not allow user 'bob' to write to topic "
        f"{env['FILESTREAM_CHUNKS_TOPIC']} (TOPIC_AUTHORIZATION_FAILED): an ACL must allow it WRITE (and DESCRIBE) "
        "on that topic"
    )
    assert "Traceback" not in result.stderr


def test_a_worker_whose_user_may_not_use_its_consumer_group_is_told_which_group(secured: SecuredStack, tmp_path: Path):
    """Without the start-up check Faust's consumer waits for that group without a word."""
    env = pipeline_env(secured, tmp_path, **sasl_env(BOB, secured))
    status, output, elapsed = run_worker_until_exit(env, tmp_path / "worker-data")
    assert status != 0 and elapsed < BOUND, f"exit {status} after {elapsed:.1f}s:\n{output[-3000:]}"
    assert last_line(output) == (
        f"filestream: broker {secured.sasl_bootstrap} does not allow user 'bob' to use consumer group "
        f"'{env['FILESTREAM_APP_ID']}' (GROUP_AUTHORIZATION_FAILED): an ACL must allow it READ on that group "
        "(FILESTREAM_APP_ID)"
    )


# -- OpenMSIStream configuration files -----------------------------------------------------------------


def shipped_configs(venv: Path) -> list[Path]:
    (package,) = venv.glob("lib/python*/site-packages/openmsistream")
    return sorted(package.rglob("*.config"))


def test_the_config_files_openmsistream_ships_load(openmsistream_venv: Path, caplog: pytest.LogCaptureFixture):  # noqa: F811
    configs = shipped_configs(openmsistream_venv)
    assert len(configs) >= 20, configs
    environ = {
        name: f"{name.lower()}.example:9093" if name.endswith("BOOTSTRAP_SERVERS") else f"value-of-{name}"
        for name in (
            "KAFKA_TEST_CLUSTER_BOOTSTRAP_SERVERS",
            "KAFKA_TEST_CLUSTER_USERNAME",
            "KAFKA_TEST_CLUSTER_PASSWORD",
            "KAFKA_PROD_CLUSTER_BOOTSTRAP_SERVERS",
            "KAFKA_PROD_CLUSTER_USERNAME",
            "KAFKA_PROD_CLUSTER_PASSWORD",
            "LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS",
            "ACCESS_KEY_ID",
            "SECRET_KEY_ID",
            "ENDPOINT_URL",
            "REGION",
        )
    }
    for config in configs:
        caplog.clear()
        settings = load_settings(environ, config_file=str(config))
        text = config.read_text()
        warned = " ".join(record.getMessage() for record in caplog.records if record.levelname == "WARNING")
        if "$KAFKA_TEST_CLUSTER" in text or "$KAFKA_PROD_CLUSTER" in text:
            cluster = "prod" if "PROD" in text else "test"
            assert settings.broker == (f"kafka://kafka_{cluster}_cluster_bootstrap_servers.example:9093",)
            assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "PLAIN"), config
            assert settings.sasl_username == f"value-of-KAFKA_{cluster.upper()}_CLUSTER_USERNAME"
            assert settings.sasl_password.reveal() == f"value-of-KAFKA_{cluster.upper()}_CLUSTER_PASSWORD"
        elif "$LOCAL_KAFKA_BROKER" in text:
            assert settings.broker == ("kafka://local_kafka_broker_bootstrap_servers.example:9093",)
            assert settings.security_protocol == "PLAINTEXT"
        else:  # the KafkaCrypto tool's own file: nothing in it is an OpenMSIStream client setting
            assert settings.broker == ("kafka://127.0.0.1:9092",)
            assert "[reproduce-encrypted-letters-kafka] bootstrap_servers" in warned
        if "[kafkacrypto]" in text:
            assert "[kafkacrypto] node_id" in warned, config
        if "[heartbeat]" in text:
            assert "[heartbeat] linger.ms" in warned and "[heartbeat] compression.type" in warned
        if "[producer]" in text:
            assert "[producer] key.serializer" not in warned  # decided by filestream: info, not a warning
        if "[s3]" in text:
            assert read_openmsistream_config(config, environ).aws == {
                "AWS_ACCESS_KEY_ID": "value-of-ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY": "value-of-SECRET_KEY_ID",
                "AWS_ENDPOINT_URL_S3": "https://value-of-ENDPOINT_URL",
                "AWS_DEFAULT_REGION": "value-of-REGION",
            }
        assert settings.config == config


def test_a_worker_configured_only_by_an_openmsistream_file(
    secured: SecuredStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """FILESTREAM_CONFIG alone gives the worker its broker, SCRAM login, CA and S3; the upload takes --config."""
    for name in [name for name in os.environ if name.startswith(("FILESTREAM_", "AWS_"))]:
        monkeypatch.delenv(name)
    bucket = f"omsi-{secrets.token_hex(4)}"
    config = tmp_path / "lab.config"
    config.write_text(
        "[broker]\n"
        "bootstrap.servers = $LAB_KAFKA\n"
        "security.protocol = SASL_SSL\n"
        "sasl.mechanism    = SCRAM-SHA-512\n"
        "sasl.username     = $LAB_KAFKA_USER\n"
        "sasl.password     = $LAB_KAFKA_PASSWORD\n"
        f"ssl.ca.location   = {secured.pki.ca_file}\n"
        "client.id         = lab-7\n\n"
        "[producer]\nbatch.size = 2000000\nlinger.ms = 100\ncompression.type = lz4\n"
        "key.serializer = StringSerializer\nvalue.serializer = DataFileChunkSerializer\n\n"
        "[consumer]\ngroup.id = create_new\nauto.offset.reset = earliest\nenable.auto.commit = False\n"
        "fetch.min.bytes = 100000\nkey.deserializer = StringDeserializer\n"
        "value.deserializer = DataFileChunkDeserializer\n\n"
        "[s3]\naccess_key_id = $ACCESS_KEY_ID\nsecret_key_id = $SECRET_KEY_ID\nendpoint_url = $ENDPOINT_URL\n"
        f"region = $REGION\nbucket_name = {bucket}\n"
    )
    lab = {
        "LAB_KAFKA": secured.sasl_bootstrap,
        "LAB_KAFKA_USER": ALICE.name,
        "LAB_KAFKA_PASSWORD": ALICE.password,
        "ACCESS_KEY_ID": "filestream-dev",
        "SECRET_KEY_ID": "filestream-dev",
        "ENDPOINT_URL": secured.s3.url,
        "REGION": "us-east-1",
    }
    output = tmp_path / "output"
    worker = started_worker(
        {**lab, "FILESTREAM_CONFIG": str(config), "FILESTREAM_OUTPUT_DIR": str(output)}, tmp_path / "worker-data"
    )
    try:
        files = sample_files(tmp_path / "files")
        result, _ = run_upload(
            {**lab, "FILESTREAM_DATA_DIR": str(tmp_path / "up")},
            "--config",
            str(config),
            str(tmp_path / "files"),
            "--source",
            "lab",
        )
        assert result.returncode == 0 and f"{len(files)} file(s) sent" in result.stdout, result.stdout + result.stderr
        wait_for_files(output / "lab", files, workers=[worker])
        wait_valid_in_s3(worker, {f"lab/{name}" for name in files})
        s3 = boto3.client(
            "s3",
            endpoint_url=secured.s3.url,
            region_name="us-east-1",
            aws_access_key_id="filestream-dev",
            aws_secret_access_key="filestream-dev",
        )
        head = s3.head_object(Bucket=bucket, Key="lab/run-1/frame.bin")
        assert head["Metadata"]["filestream-sha256"] == hashlib.sha256(files["run-1/frame.bin"]).hexdigest()
        log = worker.log_tail(100_000)
        assert f"{config}: not understood, not used: [broker] client.id" in log
        assert ALICE.password not in log and ALICE.password not in result.stdout + result.stderr
    finally:
        worker.stop()
