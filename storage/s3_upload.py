"""Uploading a spooled file to S3, with S3's own full-object checksum, and checking it afterwards.

A file below the multipart threshold goes up in one PutObject; a bigger one as a
FULL_OBJECT CRC32 multipart upload whose parts are read from the spool file and sent by
several threads at once (``part_pool``), each part with its own CRC32, which S3 checks.
The whole object's CRC32 is combined from the parts' (storage.objects.crc32_combine) and
must equal the CRC32 the file had when it was verified on completion, so bytes that
changed in the spool since are never stored as valid.  S3's answer to the upload names the
CRC32 it stored (``UploadResult.confirmed``); when it does not, or the answer was lost,
:func:`verify_object` compares size and checksum from HeadObject.

CRC32 rather than CRC64NVME: ``zlib.crc32`` is in the standard library and runs at about
4 GB/s here, far above any S3 upload rate, while CRC64NVME needs ``awscrt``
(``botocore[crt]``), a native dependency we do not otherwise need.  Both only guard
against accidental corruption, which is their job here: the file's SHA-256 travels in the
object metadata for anyone who needs a cryptographic hash.

What the embedded moto server (5.2.5) checks, read from ``moto/s3/responses.py`` and
``models.py``, because the tests run against it: it never validates a checksum a client
sends (PutObject stores the claimed ``x-amz-checksum-crc32`` verbatim, only if
``x-amz-sdk-checksum-algorithm`` is also sent, hence ``ChecksumAlgorithm`` next to
``ChecksumCRC32``); for a multipart upload created with ``ChecksumType=FULL_OBJECT`` it
computes the CRC32 of the assembled object itself and HeadObject returns it.  So against
moto a corrupted multipart upload is caught by :func:`verify_object`, a corrupted single
PutObject only by the comparison with the verified CRC32 above; AWS S3 and MinIO refuse a
mismatching upload themselves (``BadDigest``, ``XAmzContentChecksumMismatch``).
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from settings.values import S3_MAX_PART_SIZE, S3_MIN_PART_SIZE
from storage.objects import crc32_base64, crc32_combine, full_object_checksum_problem
from storage.s3 import CHECKSUM_ALGORITHM, FULL_OBJECT, S3Error, head_object, translated_errors

log = logging.getLogger(__name__)

MAX_PARTS = 10_000


class UploadChecksumMismatch(S3Error):
    """The bytes read for the upload are not the bytes verified on completion."""


@dataclass(frozen=True)
class UploadResult:
    checksum: str  # full-object CRC32, base64
    size: int
    etag: str
    parts: int  # 1 for a single PutObject
    # S3 answered the upload with this CRC32 as the whole object's, which S3 computes and checks
    # against the one sent (AWS, MinIO; moto echoes it): the object is stored as sent, as
    # verify_object's HeadObject would say, one request later.
    confirmed: bool


@dataclass(frozen=True)
class PartLayout:
    threshold: int  # files of at least this size go up in parts
    part_size: int

    def __post_init__(self) -> None:
        if self.part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"part size {self.part_size} is below S3's minimum of {S3_MIN_PART_SIZE}")
        if self.part_size > S3_MAX_PART_SIZE:
            raise ValueError(f"part size {self.part_size} is above S3's maximum of {S3_MAX_PART_SIZE}")
        if self.threshold > self.part_size:
            raise ValueError(f"multipart threshold {self.threshold} exceeds the part size {self.part_size}")

    def parts(self, size: int) -> list[tuple[int, int, int]]:
        """(part number, offset, length) of each part; more than ``part_size`` if 10,000 parts would not hold it."""
        if size < 0:
            raise ValueError(f"negative file size {size}")
        part_size = max(self.part_size, math.ceil(size / MAX_PARTS))
        if part_size > S3_MAX_PART_SIZE:
            raise ValueError(f"{size} bytes do not fit in {MAX_PARTS} parts of at most {S3_MAX_PART_SIZE} bytes")
        return [
            (number, offset, min(part_size, size - offset))
            for number, offset in enumerate(range(0, size, part_size), start=1)
        ]


def upload_file(
    client: BaseClient,
    bucket: str,
    key: str,
    path: Path,
    size: int,
    metadata: dict[str, str],
    *,
    layout: PartLayout,
    part_pool: Executor,
    expected_checksum: str | None = None,
) -> UploadResult:
    """Upload the first ``size`` bytes of ``path``; a failed multipart upload is aborted before the error is raised."""
    fd = os.open(path, os.O_RDONLY)  # one descriptor: the file may be unlinked while its parts are read
    try:
        with translated_errors(bucket, key):
            if size < layout.threshold or size == 0:
                result = _put_single(client, bucket, key, fd, size, metadata, expected_checksum)
            else:
                result = _put_multipart(client, bucket, key, fd, size, metadata, layout, part_pool, expected_checksum)
    finally:
        os.close(fd)
    log.debug("uploaded s3://%s/%s: %d bytes in %d part(s), CRC32 %s", bucket, key, size, result.parts, result.checksum)
    return result


def _read_exactly(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:  # Linux reads at most 2 GiB at a time, and parts may be up to 5 GiB
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise UploadChecksumMismatch(
                f"read {len(data)} bytes at offset {offset}, expected {length}: the file shrank"
            )
        data += more
    return data


def _check(checksum: str, expected: str | None) -> None:
    if expected is not None and checksum != expected:
        raise UploadChecksumMismatch(f"the bytes read have CRC32 {checksum}, the file was verified with {expected}")


def _put_single(
    client: BaseClient, bucket: str, key: str, fd: int, size: int, metadata: dict[str, str], expected: str | None
) -> UploadResult:
    body = _read_exactly(fd, 0, size)
    checksum = crc32_base64(zlib.crc32(body))
    _check(checksum, expected)
    response = client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        Metadata=metadata,
        ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        ChecksumCRC32=checksum,
    )
    return UploadResult(checksum, size, response["ETag"], parts=1, confirmed=_confirms(response, checksum))


def _put_multipart(
    client: BaseClient,
    bucket: str,
    key: str,
    fd: int,
    size: int,
    metadata: dict[str, str],
    layout: PartLayout,
    part_pool: Executor,
    expected: str | None,
) -> UploadResult:
    parts = layout.parts(size)
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, Metadata=metadata, ChecksumAlgorithm=CHECKSUM_ALGORITHM, ChecksumType=FULL_OBJECT
    )["UploadId"]

    def send(part: tuple[int, int, int]) -> tuple[dict[str, Any], int, int]:
        number, offset, length = part
        body = _read_exactly(fd, offset, length)
        crc = zlib.crc32(body)
        part_checksum = crc32_base64(crc)
        with translated_errors(bucket, key):
            response = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                ChecksumCRC32=part_checksum,
            )
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": part_checksum}, crc, length

    sending: list[Future[tuple[dict[str, Any], int, int]]] = []
    try:
        for part in parts:
            sending.append(part_pool.submit(send, part))
        sent = [future.result() for future in sending]
        crc = 0
        for _, part_crc, length in sent:
            crc = crc32_combine(crc, part_crc, length)
        checksum = crc32_base64(crc)
        _check(checksum, expected)
        response = client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [part for part, _, _ in sent]},
            ChecksumCRC32=checksum,
            ChecksumType=FULL_OBJECT,
        )
    except BaseException:
        # Parts not started are dropped; those in flight finish first: they read the file's
        # descriptor, closed once this returns, and a part stored after the abort would stay
        # stored (and billed), invisible, under no upload anyone aborts again.
        for future in sending:
            future.cancel()
        wait(sending)
        _abort_quietly(client, bucket, key, upload_id)
        raise
    return UploadResult(checksum, size, response["ETag"], parts=len(sent), confirmed=_confirms(response, checksum))


def _confirms(response: dict[str, Any], checksum: str) -> bool:
    stored = response.get("ChecksumCRC32")
    return full_object_checksum_problem(stored, response.get("ChecksumType")) is None and stored == checksum


def verify_object(client: BaseClient, bucket: str, key: str, *, size: int, checksum: str) -> str | None:
    """None if HeadObject shows the object's size and full-object CRC32 as sent; else what differs."""
    head = head_object(client, bucket, key, ChecksumMode="ENABLED")
    if head is None:
        return "object is missing"
    if head["ContentLength"] != size:
        return f"size {head['ContentLength']}, expected {size}"
    stored = head.get("ChecksumCRC32")
    problem = full_object_checksum_problem(stored, head.get("ChecksumType"))
    if problem is not None:
        return problem
    if stored != checksum:
        return f"CRC32 {stored}, expected {checksum}"
    return None


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: datetime


def pending_uploads(client: BaseClient, bucket: str, prefix: str) -> Iterator[PendingUpload]:
    """The multipart uploads started under ``prefix`` and neither completed nor aborted."""
    with translated_errors(bucket):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                yield PendingUpload(upload["Key"], upload["UploadId"], upload["Initiated"])


def abort_uploads(client: BaseClient, bucket: str, prefix: str, orphaned: Callable[[PendingUpload], bool]) -> list[str]:
    """Abort the pending uploads under ``prefix`` that ``orphaned`` picks; the keys of those aborted.

    A worker killed mid-upload leaves its parts stored (and billed) but invisible.  Other live
    workers upload under the same prefix, so ``orphaned`` must spare theirs: the transfer
    agent picks the uploads of the partitions it now owns and does not run itself.
    """
    aborted = []
    for upload in list(pending_uploads(client, bucket, prefix)):
        if not orphaned(upload):
            continue
        with translated_errors(bucket, upload.key):
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=upload.key, UploadId=upload.upload_id)
            except ClientError as exc:
                if exc.response["Error"].get("Code") != "NoSuchUpload":  # finished or aborted meanwhile
                    raise
                continue
        aborted.append(upload.key)
    if aborted:
        log.info("aborted %d orphaned multipart upload(s) in s3://%s/%s", len(aborted), bucket, prefix)
    return aborted


def _abort_quietly(client: BaseClient, bucket: str, key: str, upload_id: str) -> None:
    """Abort after a failure; if even that fails, the next owner of the file's partition cleans up."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotocoreConnectionError, HTTPClientError) as exc:
        log.warning("could not abort multipart upload %s of s3://%s/%s: %s", upload_id, bucket, key, exc)
