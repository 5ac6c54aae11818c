"""storage.s3 against the real moto server of the dev stack, over HTTP."""

import os
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, NoCredentialsError

from devstack.processes import free_port
from models.identity import InvalidIdentity
from storage.s3 import (
    METADATA_GENERATION,
    METADATA_PATH,
    METADATA_SHA256,
    METADATA_SIZE,
    METADATA_SOURCE,
    ObjectKeyTooLong,
    S3AccessDenied,
    S3BucketMissing,
    S3ChecksumMismatch,
    S3RequestFailed,
    S3Unreachable,
    UploadSizeMismatch,
    Verification,
    abort_orphaned_multipart_uploads,
    crc32_base64,
    ensure_bucket,
    head_generation,
    make_s3_client,
    object_key,
    object_metadata,
    translate_error,
    upload_stream,
    verify_object,
)

MiB = 1024**2
PART_SIZE = 5 * MiB  # S3's (and moto's) smallest part
SIZES = {"multipart_threshold": PART_SIZE, "part_size": PART_SIZE}
SHA = "c" * 64


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` in chunks cycling through ``sizes``, as the table store hands them out."""
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        yield data[position : position + size]
        position += size
        turn += 1


def download(client: BaseClient, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def head(client: BaseClient, bucket: str, key: str) -> dict:
    return client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def open_uploads(client: BaseClient, bucket: str) -> list[str]:
    return [upload["Key"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_small_file_lands_byte_identical_with_its_crc32(client, bucket):
    data = os.urandom(300_000)
    metadata = object_metadata("lab-1", "runs/a.bin", 4, SHA, len(data))
    parts = chunked(data, [65_536, 17])
    result = upload_stream(client, bucket, "lab-1/runs/a.bin", parts, len(data), metadata, **SIZES)
    expected = crc32_base64(zlib.crc32(data))
    assert (result.checksum, result.size, result.parts) == (expected, len(data), 1)
    assert download(client, bucket, "lab-1/runs/a.bin") == data
    stored = head(client, bucket, "lab-1/runs/a.bin")
    assert stored["ChecksumCRC32"] == expected
    assert stored["ETag"] == result.etag
    assert stored["Metadata"] == metadata
    assert verify_object(client, bucket, "lab-1/runs/a.bin", size=len(data), checksum=expected).ok


def test_multipart_upload_carries_a_full_object_crc32(client, bucket):
    data = os.urandom(2 * PART_SIZE + 123_457)
    result = upload_stream(client, bucket, "big.bin", chunked(data, [MiB + 17, 999]), len(data), {}, **SIZES)
    expected = crc32_base64(zlib.crc32(data))
    assert (result.checksum, result.size, result.parts) == (expected, len(data), 3)
    assert download(client, bucket, "big.bin") == data
    stored = head(client, bucket, "big.bin")
    assert stored["ChecksumType"] == "FULL_OBJECT"
    assert stored["ChecksumCRC32"] == expected  # no "-3" suffix: not a composite checksum
    assert verify_object(client, bucket, "big.bin", size=len(data), checksum=expected).ok
    assert open_uploads(client, bucket) == []


def test_a_file_of_exactly_one_part_is_uploaded_in_parts(client, bucket):
    data = os.urandom(PART_SIZE)
    result = upload_stream(client, bucket, "edge.bin", chunked(data, [MiB]), len(data), {}, **SIZES)
    assert result.parts == 1
    assert head(client, bucket, "edge.bin")["ChecksumType"] == "FULL_OBJECT"
    assert download(client, bucket, "edge.bin") == data


def test_an_empty_file(client, bucket):
    result = upload_stream(client, bucket, "empty", iter(()), 0, {}, **SIZES)
    assert (result.checksum, result.size) == ("AAAAAA==", 0)
    assert download(client, bucket, "empty") == b""
    assert verify_object(client, bucket, "empty", size=0, checksum="AAAAAA==").ok


@pytest.mark.parametrize("declared", [PART_SIZE + 10, 3 * PART_SIZE, 1000, 10**6])
def test_parts_that_disagree_with_the_declared_size_are_refused(client, bucket, declared):
    data = os.urandom(2 * PART_SIZE if declared > PART_SIZE else 5000)
    with pytest.raises(UploadSizeMismatch):
        upload_stream(client, bucket, "wrong-size", chunked(data, [MiB]), declared, {}, **SIZES)
    assert open_uploads(client, bucket) == []
    with pytest.raises(ClientError):
        client.head_object(Bucket=bucket, Key="wrong-size")


def test_a_failure_mid_upload_aborts_the_multipart_upload(client, bucket):
    def parts_then_crash() -> Iterator[bytes]:
        yield os.urandom(PART_SIZE)
        yield os.urandom(PART_SIZE)
        raise OSError("table store read failed")

    with pytest.raises(OSError, match="table store read failed"):
        upload_stream(client, bucket, "crash.bin", parts_then_crash(), 4 * PART_SIZE, {}, **SIZES)
    assert open_uploads(client, bucket) == []


def test_a_corrupted_multipart_upload_never_verifies(client, bucket):
    """What the server got differs from the claimed checksum: refused by S3, or caught by HeadObject.

    AWS S3 and MinIO refuse CompleteMultipartUpload with BadDigest; moto 5.2.5 never
    validates a claimed checksum but stores the CRC32 of the bytes it assembled.
    """
    sent = os.urandom(1000)
    claimed = crc32_base64(zlib.crc32(b"what the worker meant to send"))
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key="corrupt", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    part = client.upload_part(Bucket=bucket, Key="corrupt", UploadId=upload_id, PartNumber=1, Body=sent)
    try:
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="corrupt",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            ChecksumCRC32=claimed,
            ChecksumType="FULL_OBJECT",
        )
    except ClientError as exc:
        assert isinstance(translate_error(exc, bucket, "corrupt"), S3ChecksumMismatch)
    else:
        verification = verify_object(client, bucket, "corrupt", size=len(sent), checksum=claimed)
        assert verification == Verification(False, f"CRC32 {crc32_base64(zlib.crc32(sent))}, expected {claimed}")


def test_verify_object_detects_size_and_checksum_mismatches(client, bucket):
    data = os.urandom(4096)
    result = upload_stream(client, bucket, "v.bin", [data], len(data), {}, **SIZES)
    assert verify_object(client, bucket, "v.bin", size=4097, checksum=result.checksum) == Verification(
        False, "size 4096, expected 4097"
    )
    other = bytes(byte ^ 0xFF for byte in data)
    upload_stream(client, bucket, "v.bin", [other], len(other), {}, **SIZES)  # same size, other bytes
    verification = verify_object(client, bucket, "v.bin", size=4096, checksum=result.checksum)
    assert not verification.ok
    assert verification.reason == f"CRC32 {crc32_base64(zlib.crc32(other))}, expected {result.checksum}"


def test_verify_object_reports_a_missing_object_or_checksum(client, bucket):
    missing = verify_object(client, bucket, "nothing-here", size=1, checksum="AAAAAA==")
    assert missing == Verification(False, "object is missing")
    client.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert verify_object(client, bucket, "plain", size=1, checksum="AAAAAA==") == Verification(
        False,
        "no CRC32 checksum stored with the object",
    )


def test_verify_object_refuses_a_composite_checksum(client, bucket):
    data = os.urandom(PART_SIZE + 10)
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key="composite", ChecksumAlgorithm="CRC32", ChecksumType="COMPOSITE"
    )["UploadId"]
    parts = []
    for number, piece in enumerate((data[:PART_SIZE], data[PART_SIZE:]), start=1):
        checksum = crc32_base64(zlib.crc32(piece))
        response = client.upload_part(
            Bucket=bucket, Key="composite", UploadId=upload_id, PartNumber=number, Body=piece,
            ChecksumAlgorithm="CRC32", ChecksumCRC32=checksum,
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": checksum})
    client.complete_multipart_upload(
        Bucket=bucket, Key="composite", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    verification = verify_object(client, bucket, "composite", size=len(data), checksum=crc32_base64(zlib.crc32(data)))
    assert not verification.ok
    assert verification.reason.startswith("composite multipart checksum ")


def test_head_generation_reads_the_object_metadata(client, bucket):
    assert head_generation(client, bucket, "absent") is None
    upload_stream(client, bucket, "g", [b"v7"], 2, object_metadata("lab-1", "g", 7, SHA, 2), **SIZES)
    assert head_generation(client, bucket, "g") == 7
    upload_stream(client, bucket, "n", [b"v"], 1, object_metadata("lab-1", "n", None, SHA, 1), **SIZES)
    assert head_generation(client, bucket, "n") is None


def test_orphaned_multipart_uploads_under_the_prefix_are_aborted(client, bucket):
    for key in ("fs/a.bin", "fs/sub/b.bin", "other/c.bin"):
        client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    assert abort_orphaned_multipart_uploads(client, bucket, "fs/", initiated_before=long_ago) == []
    assert sorted(abort_orphaned_multipart_uploads(client, bucket, "fs/")) == ["fs/a.bin", "fs/sub/b.bin"]
    assert open_uploads(client, bucket) == ["other/c.bin"]
    assert abort_orphaned_multipart_uploads(client, bucket, "fs/") == []


def test_an_unreachable_endpoint_fails_fast_and_retryable(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    unreachable = make_s3_client(1, max_attempts=1, connect_timeout=1.0, read_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(S3Unreachable, match="unreachable for s3://anything/k") as caught:
        upload_stream(unreachable, "anything", "k", [b"data"], 4, {}, **SIZES)
    assert caught.value.retryable
    with pytest.raises(S3Unreachable):
        verify_object(unreachable, "anything", "k", size=4, checksum="AAAAAA==")
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("size", [10, 2 * PART_SIZE])
def test_a_missing_bucket_is_named(client, size):
    with pytest.raises(S3BucketMissing, match="bucket 'no-such-bucket-here' does not exist") as caught:
        upload_stream(client, "no-such-bucket-here", "k", chunked(os.urandom(size), [MiB]), size, {}, **SIZES)
    assert not caught.value.retryable


def test_ensure_bucket_is_idempotent(client, bucket):
    assert ensure_bucket(client, bucket) is False
    client.put_object(Bucket=bucket, Key="kept", Body=b"1")
    assert ensure_bucket(client, bucket) is False
    assert download(client, bucket, "kept") == b"1"


def test_a_64_mib_multipart_upload_holds_about_one_part_in_memory(client, bucket):
    total = 64 * MiB

    def generated() -> Iterator[bytes]:
        for _ in range(total // MiB):
            yield os.urandom(MiB)

    tracemalloc.start()
    try:
        result = upload_stream(client, bucket, "memory.bin", generated(), total, {}, **SIZES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.size, result.parts) == (total, 13)
    assert peak < 3 * PART_SIZE, f"peak {peak / MiB:.1f} MiB"
    assert verify_object(client, bucket, "memory.bin", size=total, checksum=result.checksum).ok


def test_upload_refuses_part_sizes_s3_would_refuse(client, bucket):
    with pytest.raises(ValueError, match="below S3's minimum"):
        upload_stream(client, bucket, "k", [b"x"], 1, {}, multipart_threshold=MiB, part_size=MiB)
    with pytest.raises(ValueError, match="exceeds the part size"):
        upload_stream(client, bucket, "k", [b"x"], 1, {}, multipart_threshold=2 * PART_SIZE, part_size=PART_SIZE)


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
        (client_error("InvalidRequest", "Invalid storage class", 400), S3RequestFailed, False),
        (NoCredentialsError(), S3AccessDenied, False),
    ],
)
def test_botocore_errors_map_to_the_s3_error_hierarchy(error, expected, retryable):
    translated = translate_error(error, "bucket-1", "lab-1/a.bin")
    assert type(translated) is expected
    assert translated.retryable is retryable
    assert "s3://bucket-1/lab-1/a.bin" in str(translated)


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("", "lab-1/runs/a.h5"),
        ("/", "lab-1/runs/a.h5"),
        ("incoming", "incoming/lab-1/runs/a.h5"),
        ("incoming/", "incoming/lab-1/runs/a.h5"),
        ("/incoming//2024/", "incoming/2024/lab-1/runs/a.h5"),
    ],
)
def test_object_key_never_has_an_empty_segment(prefix, expected):
    assert object_key(prefix, "lab-1", "runs/a.h5") == expected


def test_object_key_refuses_what_s3_or_the_identity_rules_refuse():
    with pytest.raises(ObjectKeyTooLong):
        object_key("", "lab-1", "/".join(["d" * 200] * 6))
    with pytest.raises(InvalidIdentity):
        object_key("", "lab-1", "../escape")
    with pytest.raises(InvalidIdentity):
        object_key("", "lab/1", "a")


def test_object_metadata_round_trips_a_non_ascii_path_through_s3(client, bucket):
    path = "données/été 2024+α.h5"
    metadata = object_metadata("lab-1", path, 2, SHA, 5)
    assert metadata == {
        METADATA_SOURCE: "lab-1",
        METADATA_SHA256: SHA,
        METADATA_SIZE: "5",
        METADATA_PATH: "donn%C3%A9es/%C3%A9t%C3%A9%202024%2B%CE%B1.h5",
        METADATA_GENERATION: "2",
    }
    key = object_key("", "lab-1", path)
    upload_stream(client, bucket, key, [b"hello"], 5, metadata, **SIZES)
    stored = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    assert unquote(stored[METADATA_PATH]) == path
    assert download(client, bucket, key) == b"hello"


def test_object_metadata_leaves_out_a_path_too_long_for_s3():
    metadata = object_metadata("lab-1", "/".join(["é" * 100] * 4), 1, SHA, 5)
    assert METADATA_PATH not in metadata
    assert metadata[METADATA_GENERATION] == "1"


def test_ensure_bucket_creates_in_the_client_region(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    regional = make_s3_client(1)
    name = f"test-{uuid.uuid4().hex[:12]}"
    assert ensure_bucket(regional, name) is True
    assert regional.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
