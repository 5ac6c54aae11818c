"""S3 objects: a streaming upload S3 itself checks, verification without a download, a checked download, cleanup.

Synchronous boto3 calls; the transfer agent runs them in executor threads so the
worker keeps heartbeating.  Endpoint and credentials come only from the standard
variables boto3 reads itself (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``, ...),
so the same code talks to AWS, MinIO and the embedded moto server.

Integrity: every upload carries a full-object CRC32 computed while the bytes stream
through, so S3 recomputes it and refuses a mismatch (AWS: ``BadDigest``, MinIO:
``XAmzContentChecksumMismatch``), and
:func:`verify_object` then compares size and checksum from HeadObject.

CRC32 rather than CRC64NVME: ``zlib.crc32`` is in the standard library and runs at
about 4 GB/s here (see ``bench/s3_bench.py``), far above any S3 upload rate, while
CRC64NVME needs ``awscrt`` (``botocore[crt]``), a native dependency we do not otherwise
need.  Both are full-object capable for multipart uploads; both only guard
against accidental corruption, which is their job here: the file's SHA-256 travels
in the object metadata for anyone who needs a cryptographic hash.

What the embedded moto server (5.2.5) checks, read from ``moto/s3/responses.py``
and ``models.py``, because the tests run against it:

- it never validates a checksum a client sends.  PutObject stores the claimed
  ``x-amz-checksum-crc32`` verbatim (only if ``x-amz-sdk-checksum-algorithm`` is
  also sent, hence ``ChecksumAlgorithm`` next to ``ChecksumCRC32`` below); UploadPart
  echoes the part checksum; CompleteMultipartUpload ignores the claimed one;
- for a multipart upload created with ``ChecksumType=FULL_OBJECT`` it computes the
  CRC32 of the assembled object itself and HeadObject returns it without a ``-N``
  suffix, with ``ChecksumType: FULL_OBJECT``.  ``COMPOSITE`` (the default for CRC32)
  stores the CRC32 of the part CRC32s; GetObject adds the ``-N`` suffix but HeadObject
  does not, so :func:`verify_object` also looks at ``ChecksumType``;
- so against moto a corrupted multipart upload is caught by :func:`verify_object`,
  a corrupted single PutObject is not caught at all, and the refusal of a
  mismatching upload only happens on AWS S3 and MinIO.  The request shapes here are the ones AWS
  documents, which moto accepts.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from models.identity import validate_relative_path, validate_source
from settings import S3_MIN_PART_SIZE

log = logging.getLogger(__name__)

METADATA_SHA256 = "filestream-sha256"
METADATA_GENERATION = "filestream-generation"
METADATA_SOURCE = "filestream-source"
METADATA_PATH = "filestream-path"
METADATA_SIZE = "filestream-size"

MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
# S3 counts the UTF-8 bytes of every user metadata key and value against this limit.
MAX_METADATA_BYTES = 2048
CHECKSUM_ALGORITHM = "CRC32"
FULL_OBJECT = "FULL_OBJECT"


class S3Error(Exception):
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


class UploadSizeMismatch(ValueError):
    """The parts held another number of bytes than the file's declared size."""


class ObjectKeyTooLong(ValueError):
    pass


@dataclass(frozen=True)
class UploadResult:
    checksum: str  # full-object CRC32, base64
    size: int
    etag: str
    version_id: str | None
    parts: int  # 1 for a single PutObject


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One object as HeadObject describes it: enough to plan its download and to verify the bytes."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    checksum: str | None  # ChecksumCRC32 as stored, base64
    checksum_type: str | None

    @property
    def checksum_problem(self) -> str | None:
        """Why the stored checksum cannot verify a download of the whole object; None if it can."""
        return full_object_checksum_problem(self.checksum, self.checksum_type)


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


def key_folder(prefix: str) -> str:
    """The prefix as it starts every object key: ``"a/b/"`` for ``"/a/b"``, ``""`` for no prefix."""
    return "".join(f"{segment}/" for segment in prefix.split("/") if segment)


def object_key(prefix: str, source: str, path: str) -> str:
    """``prefix/source/path``; the prefix is a folder, with or without slashes around it."""
    validate_source(source)
    validate_relative_path(path)
    key = f"{key_folder(prefix)}{source}/{path}"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ObjectKeyTooLong(f"object key for {source}/{path[:80]}... is longer than S3's {MAX_KEY_BYTES} bytes")
    return key


def object_metadata(file_id_source: str, path: str, generation: int | None, sha256: str, size: int) -> dict[str, str]:
    """User metadata of a file's object (``x-amz-meta-filestream-*``).

    Metadata travels as HTTP headers, so the path is percent-encoded; a path too
    long for S3's 2 KiB metadata limit is left out, the object key carries it anyway.
    A file without a generation number has no generation entry.
    """
    metadata = {
        METADATA_SOURCE: file_id_source,
        METADATA_SHA256: sha256,
        METADATA_SIZE: str(size),
        METADATA_PATH: quote(path, safe="/"),
    }
    if generation is not None:
        metadata[METADATA_GENERATION] = str(generation)
    if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
        del metadata[METADATA_PATH]
    return metadata


def crc32_base64(crc: int) -> str:
    """S3's spelling of a CRC32: the 4 big-endian bytes, base64 (``yH2GHg==``)."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


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


def upload_stream(
    client: BaseClient,
    bucket: str,
    key: str,
    parts: Iterable[bytes],
    size: int,
    metadata: dict[str, str],
    *,
    multipart_threshold: int,
    part_size: int,
) -> UploadResult:
    """Upload ``size`` bytes read once from ``parts`` (chunks of any size), holding at most one part.

    Below ``multipart_threshold`` one PutObject, else a FULL_OBJECT CRC32 multipart
    upload in parts of ``part_size`` (more if 10,000 parts would not hold the file),
    one part at a time, so memory stays at one part per upload whatever the file
    size.  A failed multipart upload is aborted before the error is raised.
    """
    if part_size < S3_MIN_PART_SIZE:
        raise ValueError(f"part size {part_size} is below S3's minimum of {S3_MIN_PART_SIZE}")
    if multipart_threshold > part_size:
        raise ValueError(f"multipart threshold {multipart_threshold} exceeds the part size {part_size}")
    started = time.monotonic()
    with translated_errors(bucket, key):
        if size == 0 or size < multipart_threshold:
            result = _put_single(client, bucket, key, _PartStream(parts, max(size, 1), size), metadata)
        else:
            part_size = max(part_size, math.ceil(size / MAX_PARTS))
            result = _put_multipart(client, bucket, key, _PartStream(parts, part_size, size), metadata)
    elapsed = time.monotonic() - started
    log.debug(
        "uploaded s3://%s/%s: %d bytes in %d part(s), CRC32 %s, %.1f MB/s",
        bucket,
        key,
        result.size,
        result.parts,
        result.checksum,
        result.size / max(elapsed, 1e-9) / 1e6,
    )
    return result


def verify_object(client: BaseClient, bucket: str, key: str, *, size: int, checksum: str) -> Verification:
    """Compare the object's size and full-object CRC32 from HeadObject with what was sent."""
    head = _head(client, bucket, key, ChecksumMode="ENABLED")
    if head is None:
        return Verification(False, "object is missing")
    if head["ContentLength"] != size:
        return Verification(False, f"size {head['ContentLength']}, expected {size}")
    stored = head.get("ChecksumCRC32")
    problem = full_object_checksum_problem(stored, head.get("ChecksumType"))
    if problem is not None:
        return Verification(False, problem)
    if stored != checksum:
        return Verification(False, f"CRC32 {stored}, expected {checksum}")
    return Verification(True)


def full_object_checksum_problem(checksum: str | None, checksum_type: str | None) -> str | None:
    """Why a stored ChecksumCRC32 (and ChecksumType) is not the CRC32 of the whole object; None if it is."""
    if checksum is None:
        return "no CRC32 checksum stored with the object"
    if "-" in checksum or checksum_type == "COMPOSITE":
        return f"composite multipart checksum {checksum}, not a full-object CRC32"
    return None


def list_keys(client: BaseClient, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under ``prefix`` (a plain string prefix), in S3's order: ascending UTF-8 bytes."""
    with translated_errors(bucket):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"]


def describe_object(client: BaseClient, bucket: str, key: str) -> StoredObject | None:
    """The object's size, version (ETag) and stored checksum from HeadObject; None if there is no such object."""
    head = _head(client, bucket, key, ChecksumMode="ENABLED")
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


def read_verified(client: BaseClient, bucket: str, stored: StoredObject, *, piece_size: int) -> Iterator[bytes]:
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


def head_generation(client: BaseClient, bucket: str, key: str) -> int | None:
    """The generation recorded in the object's metadata; None if no object or no generation."""
    head = _head(client, bucket, key)
    if head is None:
        return None
    recorded = head.get("Metadata", {}).get(METADATA_GENERATION)
    if recorded is None:
        return None
    try:
        return int(recorded)
    except ValueError:
        log.warning("s3://%s/%s: malformed %s %r, treated as absent", bucket, key, METADATA_GENERATION, recorded)
        return None


def abort_orphaned_multipart_uploads(
    client: BaseClient, bucket: str, prefix: str, *, initiated_before: datetime | None = None
) -> list[str]:
    """Abort the unfinished multipart uploads under ``prefix``; the keys of those aborted.

    Called at worker start: a worker killed mid-upload leaves its parts billed and
    invisible otherwise.  Other live workers may be uploading under the same prefix;
    ``initiated_before`` (timezone-aware) spares uploads started after that moment.
    """
    aborted = []
    with translated_errors(bucket):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if initiated_before is not None and upload["Initiated"] >= initiated_before:
                    continue
                try:
                    client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                except ClientError as exc:
                    if exc.response["Error"].get("Code") != "NoSuchUpload":  # finished or aborted meanwhile
                        raise
                    continue
                aborted.append(upload["Key"])
    if aborted:
        log.info("aborted %d orphaned multipart upload(s) in s3://%s/%s", len(aborted), bucket, prefix)
    return aborted


class _PartStream:
    """The chunks repacked into parts of exactly ``part_size`` bytes (the last may be shorter).

    Every part is the same reused buffer, so the consumer must be done with one
    part before asking for the next.  Counts the bytes against the declared size
    and keeps the running CRC32 of everything yielded.
    """

    def __init__(self, chunks: Iterable[bytes], part_size: int, declared_size: int) -> None:
        self._chunks = chunks
        self._part_size = part_size
        self.declared_size = declared_size
        self.size = 0
        self.crc = 0

    def __iter__(self) -> Iterator[bytearray]:
        for part in self._repacked():
            self.size += len(part)
            if self.size > self.declared_size:
                raise UploadSizeMismatch(f"the parts hold more than the declared {self.declared_size} bytes")
            self.crc = zlib.crc32(part, self.crc)
            yield part
        if self.size != self.declared_size:
            raise UploadSizeMismatch(f"the parts hold {self.size} bytes, the declared size is {self.declared_size}")

    def _repacked(self) -> Iterator[bytearray]:
        buffer = bytearray(self._part_size)
        filled = 0
        for chunk in self._chunks:
            view = memoryview(chunk)
            while view:
                take = min(len(view), self._part_size - filled)
                buffer[filled : filled + take] = view[:take]
                filled += take
                view = view[take:]
                if filled == self._part_size:
                    yield buffer
                    filled = 0
        if filled:
            del buffer[filled:]
            yield buffer


def _put_single(
    client: BaseClient, bucket: str, key: str, stream: _PartStream, metadata: dict[str, str]
) -> UploadResult:
    # One part at most: its size is the declared size, and the stream refuses more.
    body: bytes | bytearray = b"".join(stream)
    checksum = crc32_base64(stream.crc)
    response = client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        Metadata=metadata,
        ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        ChecksumCRC32=checksum,
    )
    return UploadResult(checksum, stream.size, response["ETag"], response.get("VersionId"), parts=1)


def _put_multipart(
    client: BaseClient, bucket: str, key: str, stream: _PartStream, metadata: dict[str, str]
) -> UploadResult:
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, Metadata=metadata, ChecksumAlgorithm=CHECKSUM_ALGORITHM, ChecksumType=FULL_OBJECT
    )["UploadId"]
    try:
        completed: list[dict[str, Any]] = []
        for number, part in enumerate(stream, start=1):
            # A second CRC pass per part: zlib exposes no crc32_combine, and at GB/s it costs
            # far less than sending the part.
            part_checksum = crc32_base64(zlib.crc32(part))
            response = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=part,
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                ChecksumCRC32=part_checksum,
            )
            completed.append({"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": part_checksum})
        checksum = crc32_base64(stream.crc)
        response = client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": completed},
            ChecksumCRC32=checksum,
            ChecksumType=FULL_OBJECT,
        )
    except BaseException:
        _abort_quietly(client, bucket, key, upload_id)
        raise
    return UploadResult(checksum, stream.size, response["ETag"], response.get("VersionId"), parts=len(completed))


def _abort_quietly(client: BaseClient, bucket: str, key: str, upload_id: str) -> None:
    """Abort after a failure; if even that fails, the next worker start cleans up."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotocoreConnectionError, HTTPClientError) as exc:
        log.warning("could not abort multipart upload %s of s3://%s/%s: %s", upload_id, bucket, key, exc)


def _head(client: BaseClient, bucket: str, key: str, **options: str) -> dict[str, Any] | None:
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
