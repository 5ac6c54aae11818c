"""Chunking: one streaming pass yields every chunk and the whole-file SHA-256, for every size boundary."""

import hashlib
import os
from pathlib import Path

import pytest

import client.chunking
from client.chunking import FileChangedError, chunk_record, scan_file
from models.chunk import decode_chunk, encode_chunk
from models.identity import FileId

CHUNK = 4096
FILE_ID = FileId("host", "dir/data.bin")


def records_of(path: Path, keep_limit: int = 1024**2, generation: int = 7):
    scanned, payloads = scan_file(path, CHUNK, keep_limit)
    records = []
    for index in range(scanned.chunk_count):
        payload = payloads.pop_kept(index)
        records.append(
            chunk_record(FILE_ID, generation, scanned, index, payload if payload is not None else payloads.read(index))
        )
    return scanned, records


@pytest.mark.parametrize("keep_limit", [1024**2, 0], ids=["kept-in-memory", "re-read-and-verified"])
@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK, 2 * CHUNK + 1, 5 * CHUNK + 3])
def test_chunks_cover_the_file_exactly_and_carry_its_sha256(tmp_path, size, keep_limit):
    content = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(content)

    scanned, records = records_of(path, keep_limit)

    assert scanned.chunk_count == max(1, -(-size // CHUNK))
    assert len(records) == scanned.chunk_count
    assert b"".join(record.payload for record in records) == content
    for index, record in enumerate(records):
        assert (record.index, record.offset, record.chunk_count) == (index, index * CHUNK, scanned.chunk_count)
        assert record.file_size == size
        assert record.file_hash == hashlib.sha256(content).hexdigest()
        assert record.chunk_hash == hashlib.sha256(record.payload).hexdigest()
        assert (record.source, record.path, record.generation) == ("host", "dir/data.bin", 7)
        assert record.mtime == pytest.approx(path.stat().st_mtime)
        assert decode_chunk(encode_chunk(record)).header() == record.header()
    assert all(len(record.payload) == CHUNK for record in records[:-1])


def test_an_empty_file_is_one_empty_chunk(tmp_path):
    path = tmp_path / "empty"
    path.touch()
    scanned, records = records_of(path)
    assert [(r.index, r.chunk_count, r.file_size, r.payload) for r in records] == [(0, 1, 0, b"")]
    assert scanned.file_hash == hashlib.sha256(b"").hexdigest()


def test_small_files_are_kept_after_one_read_and_each_payload_is_handed_out_once(tmp_path):
    path = tmp_path / "small"
    path.write_bytes(b"x" * (3 * CHUNK))
    _, payloads = scan_file(path, CHUNK, keep_limit=3 * CHUNK)
    assert payloads.pop_kept(1) == b"x" * CHUNK
    assert payloads.pop_kept(1) is None
    assert payloads.read(1) == b"x" * CHUNK


def test_a_file_over_the_keep_limit_keeps_no_payload(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"y" * (3 * CHUNK))
    _, payloads = scan_file(path, CHUNK, keep_limit=3 * CHUNK - 1)
    assert [payloads.pop_kept(index) for index in range(3)] == [None, None, None]


@pytest.mark.parametrize(
    "change",
    [lambda path: path.write_bytes(b"z" * (2 * CHUNK)), lambda path: os.truncate(path, CHUNK + 10)],
    ids=["same-size-new-content", "truncated"],
)
def test_a_change_between_scan_and_send_is_caught_by_the_chunk_hash(tmp_path, change):
    path = tmp_path / "big"
    path.write_bytes(b"a" * (2 * CHUNK))
    _, payloads = scan_file(path, CHUNK, keep_limit=0)
    change(path)
    with pytest.raises(FileChangedError, match="changed after it was hashed"):
        payloads.read(1)


def test_a_file_that_changes_during_the_scan_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "growing"
    path.write_bytes(b"a" * (3 * CHUNK))
    real_digest = client.chunking.digest

    def digest_then_append(data: bytes) -> str:
        with path.open("ab") as writer:
            writer.write(b"more")
        return real_digest(data)

    monkeypatch.setattr(client.chunking, "digest", digest_then_append)
    with pytest.raises(FileChangedError, match="changed while it was being read"):
        scan_file(path, CHUNK)


def test_symlinks_and_fifos_are_refused_without_blocking(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"data")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):
        scan_file(tmp_path / "link", CHUNK)
    with pytest.raises(OSError, match="no longer a regular file"):
        scan_file(tmp_path / "fifo", CHUNK)
