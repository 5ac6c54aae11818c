"""storage.s3's read side against the dev stack's moto server: listing, HeadObject descriptions, verified reads."""

import os
import zlib
from collections.abc import Iterator

import pytest

from storage.objects import crc32_base64, object_metadata
from storage.s3 import ObjectVerificationFailed, S3RequestFailed, describe_object, list_keys, read_verified
from tests.s3_objects import SMALLEST_PARTS, store_object

pytestmark = pytest.mark.e2e

MiB = 1024**2
SHA = "c" * 64


def store(client, bucket, key: str, data: bytes) -> None:
    store_object(client, bucket, key, data, object_metadata("src", key, 1, SHA, len(data)), layout=SMALLEST_PARTS)


def verified_pieces(client, bucket, key: str, piece_size: int = MiB) -> Iterator[bytes]:
    stored = describe_object(client, bucket, key)
    assert stored is not None
    return read_verified(client, bucket, stored, piece_size=piece_size)


def test_list_keys_lists_below_a_prefix_in_key_order(client, bucket):
    for key in ["p/b", "p/a/x", "q/c", "p/a"]:
        store(client, bucket, key, b"x")

    assert list(list_keys(client, bucket, "p/")) == ["p/a", "p/a/x", "p/b"]


def test_describe_object_reports_size_version_and_full_object_checksum(client, bucket):
    data = os.urandom(12 * MiB)
    store(client, bucket, "k", data)

    stored = describe_object(client, bucket, "k")

    assert stored is not None
    assert (stored.key, stored.size, stored.checksum) == ("k", len(data), crc32_base64(zlib.crc32(data)))
    assert stored.checksum_problem is None
    assert describe_object(client, bucket, "missing") is None


def test_read_verified_streams_the_object_in_bounded_pieces(client, bucket):
    data = os.urandom(12 * MiB + 5)
    store(client, bucket, "k", data)

    pieces = list(verified_pieces(client, bucket, "k"))

    assert b"".join(pieces) == data
    assert max(len(piece) for piece in pieces) == MiB


def test_read_verified_raises_after_the_last_piece_when_the_crc32_differs(client, bucket):
    # moto stores a claimed checksum without checking it: a corrupted object, as S3 never would keep one.
    client.put_object(
        Bucket=bucket,
        Key="k",
        Body=b"actual bytes",
        ChecksumAlgorithm="CRC32",
        ChecksumCRC32=crc32_base64(zlib.crc32(b"other bytes")),
    )
    pieces = verified_pieces(client, bucket, "k", piece_size=4)
    received = [next(pieces), next(pieces), next(pieces)]

    with pytest.raises(ObjectVerificationFailed, match=r"s3://.*/k: read 12 bytes with CRC32 .*, the object holds 12"):
        next(pieces)
    assert b"".join(received) == b"actual bytes"


def test_read_verified_refuses_an_object_without_a_checksum_before_reading(client, bucket):
    client.put_object(Bucket=bucket, Key="k", Body=b"unverifiable")

    with pytest.raises(ObjectVerificationFailed, match="cannot be verified: no CRC32 checksum stored"):
        list(verified_pieces(client, bucket, "k"))


def test_read_verified_refuses_an_object_replaced_since_it_was_described(client, bucket):
    store(client, bucket, "k", b"first")
    stored = describe_object(client, bucket, "k")
    store(client, bucket, "k", b"second")

    with pytest.raises(S3RequestFailed, match="replaced since it was looked at") as refused:
        list(read_verified(client, bucket, stored, piece_size=MiB))
    assert refused.value.retryable
