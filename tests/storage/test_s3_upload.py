"""storage.s3_upload: part layouts without a server; uploads, verification and pending uploads against moto."""

import logging
import os
import re
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from settings.values import S3_MAX_PART_SIZE, S3_MIN_PART_SIZE
from storage.objects import crc32_base64, object_metadata
from storage.s3 import S3BucketMissing, S3ChecksumMismatch, S3Unreachable, translate_error
from storage.s3_upload import (
    MAX_PARTS,
    PartLayout,
    UploadChecksumMismatch,
    UploadResult,
    abort_uploads,
    pending_uploads,
    upload_file,
    verify_object,
)
from tests.s3_objects import SMALLEST_PARTS, store_object

log = logging.getLogger(__name__)

MiB = 1024**2
PART = S3_MIN_PART_SIZE
SHA = "c" * 64
e2e = pytest.mark.e2e


def crc_of(data: bytes) -> str:
    return crc32_base64(zlib.crc32(data))


def spooled(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "spooled"
    path.write_bytes(data)
    return path


def upload(
    client: BaseClient,
    bucket: str,
    key: str,
    path: Path,
    size: int | None = None,
    metadata: dict[str, str] | None = None,
    *,
    threads: int = 1,
    expected: str | None = None,
) -> UploadResult:
    with ThreadPoolExecutor(threads) as part_pool:
        return upload_file(
            client,
            bucket,
            key,
            path,
            path.stat().st_size if size is None else size,
            metadata or {},
            layout=SMALLEST_PARTS,
            part_pool=part_pool,
            expected_checksum=expected,
        )


def download(client: BaseClient, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def head(client: BaseClient, bucket: str, key: str) -> dict:
    return client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def stored_keys(client: BaseClient, bucket: str) -> list[str]:
    return [entry["Key"] for entry in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def open_uploads(client: BaseClient, bucket: str) -> list[str]:
    return sorted(upload["Key"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


# --- the part layout ---------------------------------------------------------------------------


@given(st.integers(0, MAX_PARTS * S3_MAX_PART_SIZE), st.integers(PART, 64 * MiB))
def test_parts_cover_the_file_exactly_in_at_most_max_parts(size, part_size):
    parts = PartLayout(PART, part_size).parts(size)

    assert [number for number, _, _ in parts] == list(range(1, len(parts) + 1))
    position = 0
    for _, offset, length in parts:
        assert offset == position and 0 < length <= S3_MAX_PART_SIZE
        position += length
    assert position == size
    assert len(parts) <= MAX_PARTS
    if parts:
        first = parts[0][2]
        assert all(length == first for _, _, length in parts[:-1]) and parts[-1][2] <= first
        assert first == min(size, part_size if size <= MAX_PARTS * part_size else -(-size // MAX_PARTS))


def test_parts_grow_only_when_max_parts_would_not_hold_the_file():
    layout = PartLayout(PART, PART)
    assert PART * MAX_PARTS == 52_428_800_000
    assert layout.parts(0) == []
    assert layout.parts(1) == [(1, 0, 1)]
    assert layout.parts(PART + 1) == [(1, 0, PART), (2, PART, 1)]
    exactly = layout.parts(MAX_PARTS * PART)
    assert (len(exactly), exactly[-1]) == (MAX_PARTS, (MAX_PARTS, (MAX_PARTS - 1) * PART, PART))
    one_more = layout.parts(MAX_PARTS * PART + 1)
    assert len(one_more) == MAX_PARTS
    assert one_more[0] == (1, 0, PART + 1)
    assert one_more[-1] == (
        MAX_PARTS,
        (MAX_PARTS - 1) * (PART + 1),
        MAX_PARTS * PART + 1 - (MAX_PARTS - 1) * (PART + 1),
    )


@pytest.mark.parametrize(
    ("answer", "confirmed"),
    [
        ({"ChecksumCRC32": "DATA"}, True),
        ({}, False),  # an S3 that does not say what it stored
        ({"ChecksumCRC32": "AAAAAA=="}, False),
        ({"ChecksumCRC32": "DATA", "ChecksumType": "COMPOSITE"}, False),
    ],
)
def test_an_upload_is_confirmed_only_by_s3_naming_the_crc32_sent_as_the_whole_object_s(tmp_path, answer, confirmed):
    data = b"0123456789"
    answer = {name: crc_of(data) if value == "DATA" else value for name, value in answer.items()}

    class AnsweringS3:
        def put_object(self, **request: Any) -> dict[str, Any]:
            assert request["ChecksumCRC32"] == crc_of(data)
            return {"ETag": '"e"', **answer}

    result = upload(AnsweringS3(), "bucket", "k", spooled(tmp_path, data))
    assert result.confirmed is confirmed


def test_the_layout_refuses_sizes_s3_would_refuse():
    with pytest.raises(ValueError, match="below S3's minimum"):
        PartLayout(MiB, PART - 1)
    with pytest.raises(ValueError, match="above S3's maximum"):
        PartLayout(PART, S3_MAX_PART_SIZE + 1)
    with pytest.raises(ValueError, match="exceeds the part size"):
        PartLayout(2 * PART, PART)
    with pytest.raises(ValueError, match="negative file size -1"):
        SMALLEST_PARTS.parts(-1)
    assert len(SMALLEST_PARTS.parts(MAX_PARTS * S3_MAX_PART_SIZE)) == MAX_PARTS
    with pytest.raises(ValueError, match="do not fit in 10000 parts"):
        SMALLEST_PARTS.parts(MAX_PARTS * S3_MAX_PART_SIZE + 1)


# --- uploads -----------------------------------------------------------------------------------


@e2e
def test_small_file_lands_byte_identical_with_its_crc32(client, bucket, tmp_path):
    data = os.urandom(300_000)
    metadata = object_metadata("lab-1", "runs/a.bin", 4, SHA, len(data))

    result = upload(client, bucket, "lab-1/runs/a.bin", spooled(tmp_path, data), metadata=metadata)

    assert (result.checksum, result.size, result.parts, result.confirmed) == (crc_of(data), len(data), 1, True)
    assert download(client, bucket, "lab-1/runs/a.bin") == data
    stored = head(client, bucket, "lab-1/runs/a.bin")
    assert stored["ChecksumCRC32"] == crc_of(data)
    assert stored["ETag"] == result.etag
    assert stored["Metadata"] == metadata
    assert verify_object(client, bucket, "lab-1/runs/a.bin", size=len(data), checksum=crc_of(data)) is None


@e2e
def test_multipart_upload_carries_a_full_object_crc32(client, bucket, tmp_path):
    data = os.urandom(2 * PART + 123_457)

    result = upload(client, bucket, "big.bin", spooled(tmp_path, data), expected=crc_of(data))

    assert (result.checksum, result.size, result.parts) == (crc_of(data), len(data), 3)
    assert download(client, bucket, "big.bin") == data
    stored = head(client, bucket, "big.bin")
    assert stored["ChecksumType"] == "FULL_OBJECT"
    assert stored["ChecksumCRC32"] == crc_of(data)  # no "-3" suffix: not a composite checksum
    assert verify_object(client, bucket, "big.bin", size=len(data), checksum=crc_of(data)) is None
    assert open_uploads(client, bucket) == []


class PartsInFlight:
    """Wraps the client's UploadPart: part 1 waits (10 s at most) until another part is being sent."""

    def __init__(self, client: BaseClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.most = 0
        self._current = 0
        self._lock = threading.Lock()
        self._another_started = threading.Event()
        send = client.upload_part

        def upload_part(**request):
            with self._lock:
                self._current += 1
                self.most = max(self.most, self._current)
                if self._current > 1:
                    self._another_started.set()
            try:
                if request["PartNumber"] == 1:
                    self._another_started.wait(10)
                return send(**request)
            finally:
                with self._lock:
                    self._current -= 1

        monkeypatch.setattr(client, "upload_part", upload_part)


@e2e
def test_parts_sent_by_four_threads_make_the_object_one_thread_makes(client, bucket, tmp_path, monkeypatch):
    data = os.urandom(6 * PART + 4321)
    path = spooled(tmp_path, data)
    alone = upload(client, bucket, "one-thread", path, threads=1, expected=crc_of(data))
    in_flight = PartsInFlight(client, monkeypatch)

    parallel = upload(client, bucket, "four-threads", path, threads=4, expected=crc_of(data))

    assert in_flight.most > 1
    assert (parallel.checksum, parallel.size, parallel.parts) == (alone.checksum, alone.size, alone.parts)
    assert (alone.checksum, alone.parts) == (crc_of(data), 7)
    assert download(client, bucket, "four-threads") == download(client, bucket, "one-thread") == data
    assert head(client, bucket, "four-threads")["ChecksumCRC32"] == head(client, bucket, "one-thread")["ChecksumCRC32"]
    assert verify_object(client, bucket, "four-threads", size=len(data), checksum=crc_of(data)) is None


@e2e
def test_a_file_of_exactly_one_part_is_uploaded_in_parts(client, bucket, tmp_path):
    data = os.urandom(PART)

    result = upload(client, bucket, "edge.bin", spooled(tmp_path, data), expected=crc_of(data))

    assert result.parts == 1
    assert head(client, bucket, "edge.bin")["ChecksumType"] == "FULL_OBJECT"
    assert download(client, bucket, "edge.bin") == data


@e2e
def test_an_empty_file(client, bucket, tmp_path):
    result = upload(client, bucket, "empty", spooled(tmp_path, b""), expected="AAAAAA==")

    assert (result.checksum, result.size, result.parts) == ("AAAAAA==", 0, 1)
    assert download(client, bucket, "empty") == b""
    assert verify_object(client, bucket, "empty", size=0, checksum="AAAAAA==") is None


@e2e
def test_only_the_first_size_bytes_of_a_longer_file_are_uploaded(client, bucket, tmp_path):
    data = os.urandom(PART + 10)

    result = upload(client, bucket, "k", spooled(tmp_path, data + b"appended later"), len(data), expected=crc_of(data))

    assert (result.size, result.parts) == (len(data), 2)
    assert download(client, bucket, "k") == data


@e2e
@pytest.mark.parametrize("size", [1000, 2 * PART + 5], ids=["single", "multipart"])
def test_bytes_that_differ_from_the_verified_crc32_are_refused_and_leave_nothing(client, bucket, tmp_path, size):
    verified = os.urandom(size)
    changed = bytearray(verified)
    changed[size // 2] ^= 0x01  # one bit flipped in the spool since the file was verified

    with pytest.raises(UploadChecksumMismatch) as refused:
        upload(client, bucket, "changed.bin", spooled(tmp_path, bytes(changed)), expected=crc_of(verified))

    assert str(refused.value) == (
        f"the bytes read have CRC32 {crc_of(bytes(changed))}, the file was verified with {crc_of(verified)}"
    )
    assert open_uploads(client, bucket) == []
    assert stored_keys(client, bucket) == []


@e2e
@pytest.mark.parametrize("size", [3000, 3 * PART + 10], ids=["single", "multipart"])
def test_a_file_that_shrank_after_its_size_was_taken_is_refused(client, bucket, tmp_path, size):
    data = os.urandom(size)
    path = spooled(tmp_path, data)
    os.truncate(path, size * 2 // 3)

    with pytest.raises(UploadChecksumMismatch, match=r"read \d+ bytes at offset \d+, expected \d+: the file shrank"):
        upload(client, bucket, "shrunk.bin", path, size, expected=crc_of(data))

    assert open_uploads(client, bucket) == []
    assert stored_keys(client, bucket) == []


@e2e
@pytest.mark.parametrize("size", [3 * MiB + 1, 2 * PART + 77], ids=["single", "multipart"])
def test_short_reads_are_read_on(client, bucket, tmp_path, monkeypatch, size):
    """Linux reads at most 2 GiB per call, and a part may have 5 GiB; here every read gets 1 MiB at most."""
    data = os.urandom(size)
    path = spooled(tmp_path, data)
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, length, offset: pread(fd, min(length, MiB), offset))

    result = upload(client, bucket, "k", path, expected=crc_of(data))

    assert (result.checksum, result.size) == (crc_of(data), size)
    assert download(client, bucket, "k") == data


@e2e
def test_a_failure_mid_upload_aborts_the_upload_once_no_part_is_in_flight(client, bucket, tmp_path, monkeypatch):
    """Part 2 fails while part 3 is being sent: the abort waits for part 3, and parts not begun are dropped.

    A part that S3 stores after the abort stays stored (and billed) under an upload no one
    lists, and a part read after upload_file returned reads a closed file descriptor.
    """
    data = os.urandom(8 * PART)
    path = spooled(tmp_path, data)
    send = client.upload_part
    part_3_started = threading.Event()
    returned = threading.Event()
    sent = []
    unfinished_at_return = []

    def upload_part(**request):
        number = request["PartNumber"]
        sent.append(number)
        try:
            if number == 2:
                part_3_started.wait(10)
                raise EndpointConnectionError(endpoint_url="http://connection-reset.test")
            if number == 3:
                part_3_started.set()
                time.sleep(0.5)
            return send(**request)
        finally:
            if returned.is_set():
                unfinished_at_return.append(number)

    monkeypatch.setattr(client, "upload_part", upload_part)

    with ThreadPoolExecutor(2) as part_pool:
        with pytest.raises(S3Unreachable, match="unreachable for s3://.*/crash.bin"):
            upload_file(client, bucket, "crash.bin", path, len(data), {}, layout=SMALLEST_PARTS, part_pool=part_pool)
        returned.set()
    # The pool has now run whatever upload_file had left in it.

    assert unfinished_at_return == []
    assert {1, 2, 3} <= set(sent) <= {1, 2, 3, 4}  # the thread part 2 freed may begin part 4 before the cancel
    assert open_uploads(client, bucket) == []
    assert stored_keys(client, bucket) == []


@e2e
@pytest.mark.parametrize("size", [10, 2 * PART], ids=["single", "multipart"])
def test_a_missing_bucket_is_named(client, tmp_path, size):
    with pytest.raises(S3BucketMissing, match="bucket 'no-such-bucket-here' does not exist") as caught:
        upload(client, "no-such-bucket-here", "k", spooled(tmp_path, os.urandom(size)))
    assert not caught.value.retryable


@e2e
@pytest.mark.parametrize("threads", [1, 4])
def test_a_64_mib_multipart_upload_holds_about_one_part_per_thread_in_memory(client, bucket, tmp_path, threads):
    """Parts in flight, one per thread, bound the memory; never the file's size.

    tracemalloc counts the Python allocations of every thread.  Measured with moto 5.2.5:
    peaks of 7.2 MiB with 1 thread, 13.2 with 2, 23.3 to 25.2 with 4, 45.2 with 8: the 5 MiB
    part each thread holds while sending it, and 2 to 5 MiB besides (botocore's, urllib3's).
    """
    total = 64 * MiB
    path = tmp_path / "large"
    with path.open("wb") as file:
        for _ in range(total // MiB):
            file.write(os.urandom(MiB))

    tracemalloc.start()
    try:
        result = upload(client, bucket, "memory.bin", path, threads=threads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    log.info("64 MiB in %d parts of 5 MiB with %d thread(s): peak %.1f MiB", result.parts, threads, peak / MiB)
    assert (result.size, result.parts) == (total, 13)
    assert peak < threads * (PART + 2 * MiB) + 2 * MiB, f"peak {peak / MiB:.1f} MiB with {threads} thread(s)"
    assert verify_object(client, bucket, "memory.bin", size=total, checksum=result.checksum) is None


# --- verification ------------------------------------------------------------------------------


@e2e
def test_a_corrupted_multipart_upload_never_verifies(client, bucket):
    """What the server got differs from the claimed checksum: refused by S3, or caught by HeadObject.

    AWS S3 and MinIO refuse CompleteMultipartUpload with BadDigest; moto 5.2.5 never
    validates a claimed checksum but stores the CRC32 of the bytes it assembled.
    """
    sent = os.urandom(1000)
    claimed = crc_of(b"what the worker meant to send")
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
        reason = verify_object(client, bucket, "corrupt", size=len(sent), checksum=claimed)
        assert reason == f"CRC32 {crc_of(sent)}, expected {claimed}"


@e2e
def test_verify_object_detects_size_and_checksum_mismatches(client, bucket):
    data = os.urandom(4096)
    first = store_object(client, bucket, "v.bin", data, {}, layout=SMALLEST_PARTS)
    assert verify_object(client, bucket, "v.bin", size=4097, checksum=first.checksum) == "size 4096, expected 4097"

    other = bytes(byte ^ 0xFF for byte in data)
    store_object(client, bucket, "v.bin", other, {}, layout=SMALLEST_PARTS)  # same size, other bytes

    reason = verify_object(client, bucket, "v.bin", size=4096, checksum=first.checksum)
    assert reason == f"CRC32 {crc_of(other)}, expected {first.checksum}"


@e2e
def test_verify_object_reports_a_missing_object_or_checksum(client, bucket):
    assert verify_object(client, bucket, "nothing-here", size=1, checksum="AAAAAA==") == "object is missing"
    client.put_object(Bucket=bucket, Key="plain", Body=b"x")
    reason = verify_object(client, bucket, "plain", size=1, checksum="AAAAAA==")
    assert reason == "no CRC32 checksum stored with the object"


@e2e
def test_verify_object_refuses_a_composite_checksum(client, bucket):
    data = os.urandom(PART + 10)
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key="composite", ChecksumAlgorithm="CRC32", ChecksumType="COMPOSITE"
    )["UploadId"]
    parts = []
    for number, piece in enumerate((data[:PART], data[PART:]), start=1):
        response = client.upload_part(
            Bucket=bucket, Key="composite", UploadId=upload_id, PartNumber=number, Body=piece,
            ChecksumAlgorithm="CRC32", ChecksumCRC32=crc_of(piece),
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": crc_of(piece)})
    client.complete_multipart_upload(
        Bucket=bucket, Key="composite", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    reason = verify_object(client, bucket, "composite", size=len(data), checksum=crc_of(data))

    assert reason is not None and re.fullmatch(r"composite multipart checksum \S+, not a full-object CRC32", reason)


# --- uploads left pending ----------------------------------------------------------------------


def complete_with(client: BaseClient, bucket: str, key: str, upload_id: str, body: bytes) -> None:
    part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=body)
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    )


@e2e
def test_abort_uploads_aborts_only_what_the_predicate_picks(client, bucket):
    for key in ("fs/a.bin", "fs/sub/b.bin", "fs/live.bin", "fs/done.bin", "other/c.bin"):
        client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    pending = {upload.key: upload for upload in pending_uploads(client, bucket, "fs/")}
    assert sorted(pending) == ["fs/a.bin", "fs/done.bin", "fs/live.bin", "fs/sub/b.bin"]
    assert abort_uploads(client, bucket, "fs/", lambda upload: False) == []
    assert len(open_uploads(client, bucket)) == 5
    looked_at = []

    def orphaned(upload):
        looked_at.append((upload.key, upload.upload_id))
        if upload.key == "fs/done.bin":  # its uploader completes it between the listing and the abort
            complete_with(client, bucket, upload.key, upload.upload_id, b"finished")
        return upload.key != "fs/live.bin"

    aborted = abort_uploads(client, bucket, "fs/", orphaned)

    assert sorted(aborted) == ["fs/a.bin", "fs/sub/b.bin"]
    assert sorted(looked_at) == sorted((upload.key, upload.upload_id) for upload in pending.values())
    assert open_uploads(client, bucket) == ["fs/live.bin", "other/c.bin"]
    assert download(client, bucket, "fs/done.bin") == b"finished"
    assert abort_uploads(client, bucket, "fs/", orphaned) == []
    assert open_uploads(client, bucket) == ["fs/live.bin", "other/c.bin"]
