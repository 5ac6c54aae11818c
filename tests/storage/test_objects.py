"""storage.objects without a server: keys, metadata, the S3 spelling of a CRC32 and combining CRC32s."""

import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from models.identity import InvalidIdentity
from storage.objects import (
    METADATA_GENERATION,
    METADATA_PATH,
    METADATA_SHA256,
    METADATA_SIZE,
    METADATA_SOURCE,
    ObjectKeyTooLong,
    crc32_base64,
    crc32_combine,
    full_object_checksum_problem,
    key_folder,
    object_key,
    object_metadata,
)

SHA = "c" * 64
CRC32 = st.integers(0, 2**32 - 1)


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


@pytest.mark.parametrize("prefix, folder", [("", ""), ("/", ""), ("a", "a/"), ("/a//b/", "a/b/")])
def test_key_folder_is_the_prefix_as_keys_start_with_it(prefix, folder):
    assert key_folder(prefix) == folder


def test_object_key_refuses_what_s3_or_the_identity_rules_refuse():
    with pytest.raises(ObjectKeyTooLong):
        object_key("", "lab-1", "/".join(["d" * 200] * 6))
    with pytest.raises(InvalidIdentity):
        object_key("", "lab-1", "../escape")
    with pytest.raises(InvalidIdentity):
        object_key("", "lab/1", "a")


def test_object_metadata_percent_encodes_the_path():
    assert object_metadata("lab-1", "données/été 2024+α.h5", 2, SHA, 5) == {
        METADATA_SOURCE: "lab-1",
        METADATA_SHA256: SHA,
        METADATA_SIZE: "5",
        METADATA_PATH: "donn%C3%A9es/%C3%A9t%C3%A9%202024%2B%CE%B1.h5",
        METADATA_GENERATION: "2",
    }


def test_object_metadata_of_a_file_without_a_generation_has_no_generation_entry():
    assert METADATA_GENERATION not in object_metadata("lab-1", "a", None, SHA, 1)


def test_object_metadata_leaves_out_a_path_too_long_for_s3():
    metadata = object_metadata("lab-1", "/".join(["é" * 100] * 4), 1, SHA, 5)
    assert METADATA_PATH not in metadata
    assert metadata[METADATA_GENERATION] == "1"


def test_crc32_base64_is_the_big_endian_bytes_in_base64():
    assert crc32_base64(0) == "AAAAAA=="
    assert zlib.crc32(b"hello") == 0x3610A686
    assert crc32_base64(0x3610A686) == "NhCmhg=="


@pytest.mark.parametrize(
    "checksum, checksum_type, problem",
    [
        ("NhCmhg==", "FULL_OBJECT", None),
        ("NhCmhg==", None, None),
        (None, None, "no CRC32 checksum stored with the object"),
        ("NhCmhg==-3", None, "composite multipart checksum NhCmhg==-3, not a full-object CRC32"),
        ("NhCmhg==", "COMPOSITE", "composite multipart checksum NhCmhg==, not a full-object CRC32"),
    ],
)
def test_only_a_full_object_crc32_verifies_a_whole_object(checksum, checksum_type, problem):
    assert full_object_checksum_problem(checksum, checksum_type) == problem


@given(st.lists(st.binary(max_size=300), max_size=60))
@example([])
@example([b"", b"", b""])
@example([b"a", b"", b"b"])
@example([b"\x00" * 64, b"\xff" * 4096])
def test_crc32_combine_of_the_pieces_is_the_crc32_of_their_concatenation(pieces):
    crc = 0
    for piece in pieces:
        crc = crc32_combine(crc, zlib.crc32(piece), len(piece))
    assert crc == zlib.crc32(b"".join(pieces))


@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_crc32_combine_of_two_pieces(first, second):
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)


@given(CRC32, CRC32, CRC32, st.integers(0, 2**62), st.integers(0, 2**62))
def test_crc32_combine_is_associative_at_any_length(crc_a, crc_b, crc_c, length_b, length_c):
    """(a + b) + c == a + (b + c): the powers of x for huge lengths agree with those of their sums."""
    left = crc32_combine(crc32_combine(crc_a, crc_b, length_b), crc_c, length_c)
    right = crc32_combine(crc_a, crc32_combine(crc_b, crc_c, length_c), length_b + length_c)
    assert left == right


def test_crc32_combine_past_the_period_of_its_table_of_powers():
    """512 MiB of zeros: x^(8n) for n = 2^29 is x^(2^32), where the table of x^(2^k) starts over."""
    zeros = bytes(16 * 1024**2)
    head = b"the start of a large file"
    length = 2**29
    crc_zeros = 0
    for _ in range(length // len(zeros)):
        crc_zeros = zlib.crc32(zeros, crc_zeros)
    whole = zlib.crc32(head)
    for _ in range(length // len(zeros)):
        whole = zlib.crc32(zeros, whole)
    assert crc32_combine(zlib.crc32(head), crc_zeros, length) == whole


def test_crc32_combine_refuses_a_negative_length():
    with pytest.raises(ValueError, match="negative length"):
        crc32_combine(1, 2, -1)
