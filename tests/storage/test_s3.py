"""storage.s3: the client, its errors and the bucket; against the dev stack's moto server where marked e2e."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from devstack.processes import free_port
from storage.objects import METADATA_PATH, object_key, object_metadata
from storage.s3 import (
    S3AccessDenied,
    S3BucketMissing,
    S3ChecksumMismatch,
    S3RequestFailed,
    S3Unreachable,
    describe_object,
    ensure_bucket,
    make_s3_client,
    translate_error,
)
from storage.s3_upload import upload_file, verify_object
from tests.s3_objects import SMALLEST_PARTS, store_object

SHA = "c" * 64


@pytest.fixture
def unreachable_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Credentials boto3 will sign with, and an endpoint nothing listens on; no AWS files read."""
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")


@pytest.mark.parametrize("size", [4, 2 * SMALLEST_PARTS.part_size], ids=["single", "multipart"])
def test_an_unreachable_endpoint_fails_fast_and_retryable(unreachable_endpoint, tmp_path, size):
    unreachable = make_s3_client(1, max_attempts=1, connect_timeout=1.0, read_timeout=1.0)
    spooled = tmp_path / "spooled"
    spooled.write_bytes(bytes(size))
    started = time.monotonic()

    with pytest.raises(S3Unreachable, match="unreachable for s3://anything/k") as caught, ThreadPoolExecutor(2) as pool:
        upload_file(unreachable, "anything", "k", spooled, size, {}, layout=SMALLEST_PARTS, part_pool=pool)
    assert caught.value.retryable
    with pytest.raises(S3Unreachable):
        verify_object(unreachable, "anything", "k", size=4, checksum="AAAAAA==")
    with pytest.raises(S3Unreachable):
        describe_object(unreachable, "anything", "k")
    with pytest.raises(S3Unreachable):
        ensure_bucket(unreachable, "anything")
    assert time.monotonic() - started < 5.0


def client_error(code: str, message: str, status: int, operation: str = "PutObject") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


@pytest.mark.parametrize(
    "error, expected, retryable",
    [
        (
            client_error("BadDigest", "The CRC32 you specified did not match the calculated checksum.", 400),
            S3ChecksumMismatch,
            True,
        ),
        (
            client_error("InvalidRequest", "Value for x-amz-checksum-crc32 header is invalid.", 400),
            S3ChecksumMismatch,
            True,
        ),
        (client_error("XAmzContentSHA256Mismatch", "The content hash does not match", 400), S3ChecksumMismatch, True),
        (client_error("XAmzContentChecksumMismatch", "The checksum does not match", 400), S3ChecksumMismatch, True),
        (client_error("NoSuchBucket", "The specified bucket does not exist", 404), S3BucketMissing, False),
        (client_error("AccessDenied", "Access Denied", 403), S3AccessDenied, False),
        (client_error("403", "Forbidden", 403, "HeadObject"), S3AccessDenied, False),
        (client_error("InvalidAccessKeyId", "The Access Key Id does not exist", 403), S3AccessDenied, False),
        (client_error("InternalError", "We encountered an internal error", 500), S3RequestFailed, True),
        (client_error("SlowDown", "Please reduce your request rate.", 503), S3RequestFailed, True),
        (client_error("PreconditionFailed", "At least one of the pre-conditions failed", 412), S3RequestFailed, True),
        (client_error("InvalidRequest", "Invalid storage class", 400), S3RequestFailed, False),
        (NoCredentialsError(), S3AccessDenied, False),
    ],
)
def test_botocore_errors_map_to_the_s3_error_hierarchy(error, expected, retryable):
    translated = translate_error(error, "bucket-1", "lab-1/a.bin")
    assert type(translated) is expected
    assert translated.retryable is retryable
    assert "s3://bucket-1/lab-1/a.bin" in str(translated)


@pytest.mark.e2e
def test_ensure_bucket_is_idempotent(client, bucket):
    assert ensure_bucket(client, bucket) is False
    client.put_object(Bucket=bucket, Key="kept", Body=b"1")
    assert ensure_bucket(client, bucket) is False
    assert client.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"1"


@pytest.mark.e2e
def test_ensure_bucket_creates_in_the_client_region(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    regional = make_s3_client(1)
    name = f"test-{uuid.uuid4().hex[:12]}"
    assert ensure_bucket(regional, name) is True
    assert regional.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"


@pytest.mark.e2e
def test_object_metadata_round_trips_a_non_ascii_path_through_s3(client, bucket):
    path = "données/été 2024+α.h5"
    key = object_key("", "lab-1", path)

    store_object(client, bucket, key, b"hello", object_metadata("lab-1", path, 2, SHA, 5), layout=SMALLEST_PARTS)

    stored = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    assert unquote(stored[METADATA_PATH]) == path
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"hello"
