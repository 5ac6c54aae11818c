import hashlib
import os
import random
import zlib

import pytest

from storage.local import publish_file
from storage.spool import READ_BLOCK, Spool, SpoolKey

CHUNK = 1000
A, B = b"lab\x00a", b"lab\x00b"


@pytest.fixture
def spool(tmp_path):
    return Spool(tmp_path / "spool")


def chunks_of(data: bytes, length: int = CHUNK) -> list[tuple[int, int, bytes]]:
    """(index, offset, payload) of each chunk, as the uploader cuts a file."""
    return [(index, offset, data[offset : offset + length]) for index, offset in enumerate(range(0, len(data), length))]


def fill(spool: Spool, key: SpoolKey, data: bytes, order: list[int] | None = None) -> None:
    chunks = chunks_of(data)
    for position in order if order is not None else range(len(chunks)):
        spool.write(key, *chunks[position])


def test_chunks_written_in_any_order_make_the_file(spool):
    key = SpoolKey(3, b"lab\x00runs/a.bin", 1)
    data = os.urandom(17 * CHUNK + 123)
    order = list(range(18))
    random.Random(7).shuffle(order)

    fill(spool, key, data, order)

    assert spool.path(key).read_bytes() == data
    assert spool.path(key).parent == spool.root / "p3"
    assert spool.count(key) == 18 and spool.complete(key, 18)


def test_holds_complete_and_missing_follow_the_chunks_written(spool):
    key = SpoolKey(0, b"lab\x00a", 1)
    chunks = chunks_of(os.urandom(10 * CHUNK))
    for index in (9, 0, 4, 5):
        spool.write(key, *chunks[index])

    assert [index for index in range(10) if spool.holds(key, index)] == [0, 4, 5, 9]
    assert not spool.holds(SpoolKey(0, b"lab\x00a", 2), 0)  # another epoch of the file
    assert spool.count(key) == 4
    assert not spool.complete(key, 10)
    assert spool.missing(key, 10) == [1, 2, 3, 6, 7, 8]
    assert spool.missing(key, 10, limit=2) == [1, 2]
    assert spool.missing(SpoolKey(0, b"never written", 1), 3) == [0, 1, 2]
    for index in (1, 2, 3, 6, 7, 8):
        spool.write(key, *chunks[index])
    assert spool.complete(key, 10) and spool.missing(key, 10) == []
    assert not spool.complete(key, 11)


def test_each_partition_file_and_epoch_has_its_own_file(spool):
    keys = [SpoolKey(*fields) for fields in [(0, A, 1), (0, A, 2), (0, B, 1), (1, A, 1)]]
    for number, key in enumerate(keys):
        spool.write(key, 0, 0, f"file {number}".encode())

    assert len({spool.path(key) for key in keys}) == 4
    assert [spool.path(key).read_bytes() for key in keys] == [b"file 0", b"file 1", b"file 2", b"file 3"]
    assert sorted(spool.keys(), key=keys.index) == keys and len(spool) == 4


def test_discard_removes_one_file_and_what_is_known_of_it(spool):
    kept, discarded = SpoolKey(0, b"lab\x00kept", 1), SpoolKey(0, b"lab\x00gone", 1)
    spool.write(kept, 0, 0, b"kept")
    spool.write(discarded, 0, 0, b"gone")

    spool.discard(discarded)
    spool.discard(SpoolKey(5, b"lab\x00never written", 1))

    assert not spool.path(discarded).exists()
    assert not spool.holds(discarded, 0) and spool.count(discarded) == 0
    assert list(spool.keys()) == [kept] and spool.path(kept).read_bytes() == b"kept"


def test_forget_partition_drops_only_that_partitions_files(spool):
    lost = [SpoolKey(2, b"lab\x00a", 1), SpoolKey(2, b"lab\x00b", 4)]
    kept = SpoolKey(1, b"lab\x00a", 1)
    for key in [*lost, kept]:
        spool.write(key, 0, 0, b"x")

    spool.forget_partition(2)
    spool.forget_partition(9)  # never held anything

    assert not (spool.root / "p2").exists()
    assert list(spool.keys()) == [kept] and spool.holds(kept, 0)
    assert not any(spool.holds(key, 0) for key in lost)
    spool.write(lost[0], 0, 0, b"again")  # the partition may come back
    assert spool.path(lost[0]).read_bytes() == b"again"


def test_wipe_forgets_everything_and_the_spool_still_works(spool):
    spool.write(SpoolKey(0, b"lab\x00a", 1), 0, 0, b"x")
    spool.write(SpoolKey(1, b"lab\x00b", 1), 0, 0, b"y")
    (spool.root / "stray-file").write_bytes(b"left by another process")

    spool.wipe()

    assert not spool.root.exists() and len(spool) == 0 and list(spool.keys()) == []
    spool.wipe()  # nothing to remove is fine
    spool.write(SpoolKey(0, b"lab\x00a", 1), 0, 0, b"new")
    assert spool.path(SpoolKey(0, b"lab\x00a", 1)).read_bytes() == b"new"


@pytest.mark.parametrize("size", [0, 1, READ_BLOCK, 2 * READ_BLOCK + 12_345])
def test_digests_are_those_of_the_bytes(spool, size):
    key = SpoolKey(0, b"lab\x00a", 1)
    data = os.urandom(size)
    spool.write(key, 0, 0, data[: size // 2])
    spool.write(key, 1, size // 2, data[size // 2 :])

    digests = spool.digests(key, {"sha256", "md5", "blake2b"})

    assert digests.size == size
    assert digests.crc32 == zlib.crc32(data)
    assert digests.hashes == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),  # noqa: S324  (a processor may ask for any hashlib name)
        "blake2b": hashlib.blake2b(data).hexdigest(),
    }
    assert spool.digests(key, set()).hashes == {}


def test_a_second_spool_on_the_same_root_trusts_nothing_it_finds(tmp_path):
    """A restarted worker: the files of the first process are there, and are no one's."""
    key = SpoolKey(0, b"lab\x00a", 1)
    first = Spool(tmp_path / "spool")
    fill(first, key, os.urandom(5 * CHUNK + 10))
    published = tmp_path / "out" / "a"
    publish_file(first.path(key), published)  # the output file may be the spool file's inode
    published_bytes = published.read_bytes()

    second = Spool(tmp_path / "spool")

    assert len(second) == 0 and list(second.keys()) == []
    assert not second.holds(key, 0) and second.count(key) == 0 and not second.complete(key, 6)
    assert second.missing(key, 6) == [0, 1, 2, 3, 4, 5]
    shorter = os.urandom(2 * CHUNK)
    fill(second, key, shorter)
    assert second.digests(key, set()).size == len(shorter)
    assert second.path(key).read_bytes() == shorter
    assert published.read_bytes() == published_bytes
