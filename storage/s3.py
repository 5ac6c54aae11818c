"""S3 through boto3: the client, errors that say what went wrong, the bucket, listing and checked downloads.

Synchronous boto3 calls; the worker runs them in executor threads so it keeps
heartbeating.  Endpoint and credentials come only from the standard variables boto3
reads itself (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``, ...), so the same code
talks to AWS, MinIO and the embedded moto server.  Uploads are in storage/s3_upload.py;
keys, metadata and checksums, without boto3, in storage/objects.py.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from errors import FilestreamError
from storage.objects import StoredObject, crc32_base64

log = logging.getLogger(__name__)

CHECKSUM_ALGORITHM = "CRC32"
FULL_OBJECT = "FULL_OBJECT"


class S3Error(FilestreamError):
    """An S3 call that did not succeed; ``retryable`` says whether trying again later may help."""

    retryable = False


class S3Unreachable(S3Error):
    """No answer from the endpoint: refused, timed out, reset."""

    retryable = True


class S3BucketMissing(S3Error):
    pass


class S3AccessDenied(S3Error):
    pass


class S3ChecksumMismatch(S3Error):
    """S3 computed another checksum than the one sent: the bytes changed on the way."""

    retryable = True


class S3RequestFailed(S3Error):
    """Any other refusal; server-side (5xx, throttling) ones are retryable."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ObjectVerificationFailed(S3Error):
    """Downloaded bytes differ from the object's stored size or full-object CRC32, or it has no such CRC32."""


def make_s3_client(
    max_pool_connections: int,
    *,
    max_attempts: int = 3,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
) -> BaseClient:
    """An S3 client for ``max_pool_connections`` concurrent threads.

    Checksums only when an operation requires them: this module sends its own, and
    the defaults of botocore ≥ 1.36 (checksums on every request, often as aws-chunked
    trailers, and response validation) are what S3-compatible stores reject.
    Path-style addressing with a custom endpoint, because MinIO and moto do not serve
    ``bucket.host`` names; virtual-hosted style (botocore's choice) on AWS.
    """
    custom_endpoint = bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": "path" if custom_endpoint else "auto"},
    )
    return boto3.client("s3", config=config)


def translate_error(exc: Exception, bucket: str, key: str | None = None) -> S3Error:
    """The :class:`S3Error` for a botocore exception, with a message naming bucket and key."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, (BotocoreConnectionError, HTTPClientError)):
        return S3Unreachable(f"S3 endpoint unreachable for {where}: {exc}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return S3AccessDenied(
            f"no usable AWS credentials for {where} ({exc}): set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
    if not isinstance(exc, ClientError):
        return S3RequestFailed(f"S3 request for {where} failed: {exc}", retryable=False)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = error.get("Message") or ""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    detail = f"{exc.operation_name} {where}: {code} {message}".rstrip()
    if code == "NoSuchBucket":
        return S3BucketMissing(f"bucket {bucket!r} does not exist ({detail})")
    if code in _ACCESS_DENIED_CODES or status == 403:
        return S3AccessDenied(f"access denied ({detail}); check the AWS credentials and the bucket policy")
    if code in _CHECKSUM_CODES or (code == "InvalidRequest" and "checksum" in message.lower()):
        return S3ChecksumMismatch(f"S3 refused the checksum ({detail})")
    if code == "PreconditionFailed":
        return S3RequestFailed(f"the object was replaced since it was looked at ({detail})", retryable=True)
    return S3RequestFailed(f"S3 request failed ({detail})", retryable=status >= 500 or code in _RETRYABLE_CODES)


_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "BucketAlreadyExists",  # the name belongs to another account
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)
_CHECKSUM_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"})
_RETRYABLE_CODES = frozenset({"SlowDown", "RequestTimeout"})
_TRANSLATED_ERRORS = (
    ClientError,
    BotocoreConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)


@contextmanager
def translated_errors(bucket: str, key: str | None = None) -> Iterator[None]:
    try:
        yield
    except _TRANSLATED_ERRORS as exc:
        raise translate_error(exc, bucket, key) from exc


def ensure_bucket(client: BaseClient, bucket: str) -> bool:
    """Create ``bucket`` unless it exists; True if it was created."""
    with translated_errors(bucket):
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if not _not_found(exc):
                raise
        create: dict[str, Any] = {"Bucket": bucket}
        if client.meta.region_name not in (None, "us-east-1"):  # S3 refuses us-east-1 as a location constraint
            create["CreateBucketConfiguration"] = {"LocationConstraint": client.meta.region_name}
        try:
            client.create_bucket(**create)
        except ClientError as exc:
            if exc.response["Error"].get("Code") == "BucketAlreadyOwnedByYou":
                return False
            raise
    log.info("created bucket %s", bucket)
    return True


def list_keys(client: BaseClient, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under ``prefix`` (a plain string prefix), in S3's order: ascending UTF-8 bytes."""
    with translated_errors(bucket):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"]


def describe_object(client: BaseClient, bucket: str, key: str) -> StoredObject | None:
    """The object's size, version (ETag) and stored checksum from HeadObject; None if there is no such object."""
    head = head_object(client, bucket, key, ChecksumMode="ENABLED")
    if head is None:
        return None
    return StoredObject(
        key=key,
        size=head["ContentLength"],
        etag=head["ETag"],
        last_modified=head["LastModified"],
        checksum=head.get("ChecksumCRC32"),
        checksum_type=head.get("ChecksumType"),
    )


def read_verified(
    client: BaseClient, bucket: str, stored: StoredObject, *, piece_size: int
) -> Generator[bytes, None, None]:
    """The bytes of the object ``stored`` describes, in pieces of at most ``piece_size``, verified at the end.

    GetObject asks for the ETag HeadObject saw, so the bytes are the ones the stored checksum
    describes (a replaced object fails with a retryable :class:`S3RequestFailed`).  After the
    last piece, their count and CRC32 are compared with ``stored``: a mismatch raises
    :class:`ObjectVerificationFailed`, so a consumer that keeps what it read only once the
    iteration has ended never keeps unverified bytes.  An object without a full-object CRC32
    is refused before anything is read.
    """
    where = f"s3://{bucket}/{stored.key}"
    problem = stored.checksum_problem
    if problem is not None:
        raise ObjectVerificationFailed(f"{where} cannot be verified: {problem}")
    with translated_errors(bucket, stored.key):
        # No ChecksumMode: the CRC32 is computed here, and botocore would compute it a second time.
        body = client.get_object(Bucket=bucket, Key=stored.key, IfMatch=stored.etag)["Body"]
    crc = 0
    received = 0
    try:
        with translated_errors(bucket, stored.key):
            while piece := body.read(piece_size):
                crc = zlib.crc32(piece, crc)
                received += len(piece)
                yield piece
    finally:
        body.close()
    checksum = crc32_base64(crc)
    if received != stored.size or checksum != stored.checksum:
        raise ObjectVerificationFailed(
            f"{where}: read {received} bytes with CRC32 {checksum}, "
            f"the object holds {stored.size} bytes with CRC32 {stored.checksum}"
        )


def head_object(client: BaseClient, bucket: str, key: str, **options: str) -> dict[str, Any] | None:
    with translated_errors(bucket, key):
        try:
            return client.head_object(Bucket=bucket, Key=key, **options)
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise


def _not_found(exc: ClientError) -> bool:
    # HEAD responses have no body, so a missing key and a missing bucket are both a bare 404.
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
