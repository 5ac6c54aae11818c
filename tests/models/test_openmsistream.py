"""OpenMSIStream chunk records: decoding, refusal of damaged or hostile ones, and codec detection.

Records are packed the way OpenMSIStream 1.8's ``DataFileChunkSerializer`` packs them:
``msgpack.packb([...], use_bin_type=True)`` with SHA-512 digests as raw bytes.
"""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from devstack.testing import make_chunks
from models.chunk import ChunkDecodeError, decode_chunk, encode_chunk
from models.chunk_codecs import decode_any_chunk, detect_codec
from models.openmsistream import decode_openmsistream_chunk
from settings.values import CHUNK_CODECS

FILE = b"first chunk|second chunk|third"
CHUNK_SIZE = 12


def omsi_fields(
    data: bytes = FILE,
    chunk_i: int = 2,
    *,
    filename: str = "scan.csv",
    subdir: str = "run7/raw",
    filename_append: str = "",
    mtime: float | None = 1_700_000_000.5,
) -> list:
    """The fields of chunk ``chunk_i`` (1-based) of ``data``, in the serializer's order."""
    pieces = [data[offset : offset + CHUNK_SIZE] for offset in range(0, len(data), CHUNK_SIZE)]
    piece = pieces[chunk_i - 1]
    fields = [
        filename,
        hashlib.sha512(data).digest(),
        hashlib.sha512(piece).digest(),
        (chunk_i - 1) * CHUNK_SIZE,
        chunk_i,
        len(pieces),
        subdir,
        filename_append,
        piece,
    ]
    if mtime is not None:
        fields.append(mtime)
    return fields


def pack(fields: object) -> bytes:  # any value: some tests pack what is no OpenMSIStream record
    return msgpack.packb(fields, use_bin_type=True)


class TestValidRecords:
    def test_ten_field_record_maps_to_a_file_chunk(self):
        chunk = decode_openmsistream_chunk(pack(omsi_fields()), source="lab-omsi")
        assert chunk.file_id.key == b"lab-omsi/run7/raw/scan.csv"
        assert (chunk.index, chunk.offset, chunk.chunk_count) == (1, CHUNK_SIZE, 3)
        assert chunk.payload == b"second chunk"
        assert chunk.file_hash == hashlib.sha512(FILE).hexdigest()
        assert chunk.hash_name == "sha512" and chunk.payload_is_intact()
        assert chunk.generation is None and chunk.file_size is None
        assert chunk.mtime == 1_700_000_000.5

    def test_nine_field_record_of_older_uploaders_has_no_mtime(self):
        chunk = decode_openmsistream_chunk(pack(omsi_fields(mtime=None)))
        assert chunk.mtime is None
        assert chunk.file_id.source == "openmsistream"

    def test_mtime_zero_means_not_captured(self):
        assert decode_openmsistream_chunk(pack(omsi_fields(mtime=0.0))).mtime is None

    def test_chunk_index_is_zero_based_inside(self):
        first = decode_openmsistream_chunk(pack(omsi_fields(chunk_i=1)))
        last = decode_openmsistream_chunk(pack(omsi_fields(chunk_i=3)))
        assert (first.index, first.offset) == (0, 0)
        assert (last.index, last.payload) == (2, b"|third")

    def test_file_in_the_upload_root_has_no_subdir(self):
        chunk = decode_openmsistream_chunk(pack(omsi_fields(subdir="")))
        assert chunk.path == "scan.csv"

    @pytest.mark.parametrize(
        "filename, append, expected",
        [
            ("scan.csv", "_copy", "scan_copy.csv"),
            ("archive.tar.gz", "_2", "archive.tar_2.gz"),
            ("README", "-x", "README-x"),
            (".hidden", "_a", ".hidden_a"),
        ],
    )
    def test_filename_append_goes_before_the_last_suffix_as_openmsistream_writes_it(self, filename, append, expected):
        chunk = decode_openmsistream_chunk(pack(omsi_fields(filename=filename, filename_append=append)))
        assert chunk.path == f"run7/raw/{expected}"

    def test_a_damaged_payload_decodes_and_fails_the_chunk_hash_check(self):
        fields = omsi_fields()
        fields[8] = b"SECOND CHUNK"
        chunk = decode_openmsistream_chunk(pack(fields))
        assert not chunk.payload_is_intact()

    def test_strings_packed_as_raw_bytes_are_read_too(self):
        # OpenMSIStream's deserializer unpacks with raw=True, so bin-typed names are valid as well.
        fields = omsi_fields()
        fields[0], fields[6], fields[7] = b"scan.csv", b"run7/raw", b""
        assert decode_openmsistream_chunk(pack(fields)).path == "run7/raw/scan.csv"


class TestRejectedRecords:
    @pytest.mark.parametrize(
        "value, reason",
        [
            (b"", "empty message"),
            (b"\x9a\xa8scan.csv", "garbled msgpack"),
            (pack(omsi_fields()) + b"trailing", "garbled msgpack"),
            (b"\xc1\x00", "garbled msgpack"),
            (pack(omsi_fields())[:-40], "garbled msgpack"),
            (pack(omsi_fields()[:8]), "array of 8"),
            (pack(omsi_fields() + [0]), "array of 11"),
            (pack({"filename": "scan.csv"}), "a dict"),
            (pack("just a string"), "a bytes"),
        ],
        ids=[
            "empty",
            "truncated-header",
            "trailing-bytes",
            "reserved-byte",
            "truncated-data",
            "8-fields",
            "11-fields",
            "map",
            "string",
        ],
    )
    def test_not_a_record(self, value, reason):
        with pytest.raises(ChunkDecodeError, match=reason):
            decode_openmsistream_chunk(value)

    @pytest.mark.parametrize(
        "index, bad, reason",
        [
            (0, 42, "'filename' is a int"),
            (0, b"\xff\xfe", "'filename' is not UTF-8"),
            (1, b"short", "'file_hash' is not a SHA-512"),
            (1, hashlib.sha256(FILE).digest(), "'file_hash' is not a SHA-512"),
            (2, hashlib.sha512(b"x").hexdigest(), "'chunk_hash' is not a SHA-512"),
            (3, -1, "negative chunk_offset_write"),
            (3, 1.5, "'chunk_offset_write' is not an integer"),
            (4, 0, "chunk_i 0 outside 1..3"),
            (4, 4, "chunk_i 4 outside 1..3"),
            (4, True, "'chunk_i' is not an integer"),
            (5, "3", "'n_total_chunks' is not an integer"),
            (8, 7, "'data' is a int"),
            (9, "yesterday", "'file_mtime' is not a finite number"),
            (9, float("nan"), "'file_mtime' is not a finite number"),
        ],
    )
    def test_bad_field(self, index, bad, reason):
        fields = omsi_fields()
        fields[index] = bad
        with pytest.raises(ChunkDecodeError, match=reason):
            decode_openmsistream_chunk(pack(fields))

    @pytest.mark.parametrize(
        "subdir, filename, append",
        [
            ("..", "passwd", ""),
            ("a/../..", "up.txt", ""),
            ("/etc", "passwd", ""),
            ("C:/Windows", "evil.dll", ""),
            ("a\\..\\..", "evil", ""),
            ("run", "..", ""),
            ("run", ".", ""),
            ("run", "", ""),
            ("run", "a/b", ""),
            ("run", "ok.txt", "/../../x"),
            ("run", "nul\x00byte", ""),
            ("run", "x" * 300, ""),
            ("run//deep", "file", ""),
        ],
    )
    def test_hostile_path(self, subdir, filename, append):
        with pytest.raises(ChunkDecodeError, match="bad file identity"):
            decode_openmsistream_chunk(pack(omsi_fields(subdir=subdir, filename=filename, filename_append=append)))


class TestCodecs:
    def test_auto_detects_both_formats_by_the_first_byte(self):
        ours = encode_chunk(make_chunks(b"our own record")[0])
        theirs = pack(omsi_fields())
        assert (detect_codec(ours), detect_codec(theirs)) == ("filestream", "openmsistream")
        assert decode_any_chunk(ours) == decode_chunk(ours)
        assert decode_any_chunk(theirs, "auto", "lab-omsi").file_id.key == b"lab-omsi/run7/raw/scan.csv"

    def test_nine_and_ten_field_records_are_both_detected(self):
        assert detect_codec(pack(omsi_fields(mtime=None))) == detect_codec(pack(omsi_fields())) == "openmsistream"

    @pytest.mark.parametrize("value", [b"", b"not a chunk", b"\x93\x01\x02\x03", b"FSC"])
    def test_auto_refuses_what_is_neither(self, value):
        with pytest.raises(ChunkDecodeError, match="neither a filestream chunk record nor an OpenMSIStream one"):
            decode_any_chunk(value)

    def test_a_fixed_codec_decodes_only_its_own_format(self):
        ours = encode_chunk(make_chunks(b"our own record")[0])
        theirs = pack(omsi_fields())
        with pytest.raises(ChunkDecodeError, match="not a filestream chunk record"):
            decode_any_chunk(theirs, "filestream")
        with pytest.raises(ChunkDecodeError, match="garbled msgpack"):
            decode_any_chunk(ours, "openmsistream")

    @pytest.mark.parametrize("codec", CHUNK_CODECS)
    def test_every_codec_the_setting_accepts_has_a_decoder(self, codec):
        samples = {"filestream": encode_chunk(make_chunks(b"ours")[0]), "openmsistream": pack(omsi_fields())}
        assert decode_any_chunk(samples.get(codec, samples["openmsistream"]), codec).payload_is_intact()


def test_filestream_records_stay_sha256():
    chunk = decode_chunk(encode_chunk(make_chunks(b"native")[0]))
    assert chunk.hash_name == "sha256" and chunk.payload_is_intact()
