import errno
import os
import stat
import tempfile
from pathlib import Path

import pytest

from models.identity import FileId
from storage.local import AtomicFile, UnsafeDestination, confined_destination, publish_file, safe_destination


def test_commit_replaces_atomically_with_the_usual_mode(tmp_path):
    dest = tmp_path / "out" / "file.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with AtomicFile(dest) as sink:
        sink.write(b"new ")
        assert dest.read_bytes() == b"old"
        sink.write(b"content")
        sink.commit()
    assert dest.read_bytes() == b"new content"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask
    assert list(dest.parent.iterdir()) == [dest]


def test_leaving_without_commit_keeps_the_old_file_and_no_temp(tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), AtomicFile(dest) as sink:
        sink.write(b"partial")
        raise RuntimeError("interrupted")
    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]


def test_symlinked_directory_leading_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    output = tmp_path / "output"
    (output / "lab").mkdir(parents=True)
    (output / "lab" / "link").symlink_to(outside)
    with pytest.raises(UnsafeDestination):
        safe_destination(output, FileId("lab", "link/file.txt"))
    assert safe_destination(output, FileId("lab", "ok/file.txt")) == output / "lab" / "ok" / "file.txt"


def test_commit_removes_temp_files_a_killed_writer_left(tmp_path):
    dest = tmp_path / "data[1].bin"
    abandoned = AtomicFile(dest)
    abandoned.write(b"half")
    abandoned._file.close()  # as if the process had been killed mid-write
    unrelated = tmp_path / ".other.bin.x.part"
    unrelated.write_bytes(b"another file's write")
    with AtomicFile(dest) as sink:
        sink.write(b"whole")
        sink.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.bin.x.part", "data[1].bin"]


# --- Symlinks planted in the output directory (the fault campaign's hostile-paths scenario) ----------


@pytest.fixture
def planted(tmp_path):
    """An output dir whose source folder holds a symlink to a directory outside and one to a file outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"must stay as it is")
    output = tmp_path / "output"
    source = output / "lab"
    source.mkdir(parents=True)
    (source / "linked-dir").symlink_to(outside, target_is_directory=True)
    (source / "linked-file.txt").symlink_to(victim)
    return output, outside, victim


@pytest.mark.parametrize("path", ["linked-dir/escape.txt", "linked-dir/new/deeper/escape.txt", "linked-file.txt"])
def test_a_destination_through_or_at_a_planted_symlink_is_refused(planted, path):
    output, outside, victim = planted
    with pytest.raises(UnsafeDestination, match=f"lab/{path}: destination .* resolves outside"):
        safe_destination(output, FileId("lab", path))
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert victim.read_bytes() == b"must stay as it is"


def test_a_planted_symlink_refused_directly_names_what_is_written(planted):
    output, _, _ = planted
    dest = output / "lab" / "linked-file.txt"
    with pytest.raises(UnsafeDestination, match="the download of x: destination"):
        confined_destination(output, dest, "the download of x")
    plain = output / "lab" / "plain.txt"
    assert confined_destination(output, plain, "the download of y") == plain


def test_a_dangling_symlink_as_the_destination_is_refused(tmp_path):
    output = tmp_path / "output"
    output.mkdir()
    (output / "later.txt").symlink_to(tmp_path / "does-not-exist-yet.txt")
    with pytest.raises(UnsafeDestination):
        confined_destination(output, output / "later.txt", "later.txt")


def test_a_relative_symlink_climbing_out_is_refused(tmp_path):
    output = tmp_path / "output"
    (output / "lab").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (output / "lab" / "up").symlink_to(Path("..") / ".." / "outside")
    with pytest.raises(UnsafeDestination):
        safe_destination(output, FileId("lab", "up/file.txt"))


def test_a_symlink_to_a_sibling_sharing_the_output_dirs_name_as_a_prefix_is_refused(tmp_path):
    output = tmp_path / "output"
    (output / "lab").mkdir(parents=True)
    sibling = tmp_path / "output-elsewhere"
    sibling.mkdir()
    (output / "lab" / "link").symlink_to(sibling)
    with pytest.raises(UnsafeDestination):
        safe_destination(output, FileId("lab", "link/file.txt"))


def test_a_chain_of_symlinks_that_ends_outside_is_refused(planted):
    output, _, _ = planted
    (output / "lab" / "hop").symlink_to(output / "lab" / "linked-dir")
    with pytest.raises(UnsafeDestination):
        safe_destination(output, FileId("lab", "hop/file.txt"))


def test_symlinks_that_stay_inside_are_followed(tmp_path):
    real_output = tmp_path / "disk" / "output"
    (real_output / "lab" / "2024").mkdir(parents=True)
    (real_output / "lab" / "latest").symlink_to(real_output / "lab" / "2024", target_is_directory=True)
    output = tmp_path / "output-link"
    output.symlink_to(real_output, target_is_directory=True)  # the output dir itself may be a symlink
    dest = safe_destination(output, FileId("lab", "latest/file.txt"))
    assert dest == output / "lab" / "latest" / "file.txt"
    with AtomicFile(dest) as sink:
        sink.write(b"inside")
        sink.commit()
    assert (real_output / "lab" / "2024" / "file.txt").read_bytes() == b"inside"


# --- publish_file: a verified spool file put in place ------------------------------------------


def umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def spool_file(tmp_path: Path, data: bytes = b"verified bytes") -> Path:
    source = tmp_path / "spool" / "p0" / "0123abcd-1"
    source.parent.mkdir(parents=True)
    source.write_bytes(data)
    source.chmod(0o600)
    return source


def entries(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture
def links_fail(monkeypatch):
    """os.link as it fails between two file systems."""

    def cross_device(source, dest, *args, **kwargs):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(source), None, str(dest))

    monkeypatch.setattr(os, "link", cross_device)


def test_publish_links_the_spool_file_when_on_one_file_system(tmp_path):
    source = spool_file(tmp_path)
    dest = tmp_path / "out" / "lab" / "a.bin"

    publish_file(source, dest)

    assert dest.read_bytes() == b"verified bytes"
    assert dest.stat().st_ino == source.stat().st_ino and dest.stat().st_nlink == 2
    assert stat.S_IMODE(dest.stat().st_mode) == umask_mode()
    assert entries(dest.parent) == ["a.bin"]


def test_publish_copies_when_the_link_fails(tmp_path, links_fail):
    source = spool_file(tmp_path)
    dest = tmp_path / "out" / "a.bin"

    publish_file(source, dest)

    assert dest.read_bytes() == source.read_bytes() == b"verified bytes"
    assert dest.stat().st_ino != source.stat().st_ino and source.stat().st_nlink == 1
    assert stat.S_IMODE(dest.stat().st_mode) == umask_mode()
    assert stat.S_IMODE(source.stat().st_mode) == 0o600
    assert entries(dest.parent) == ["a.bin"]


@pytest.mark.parametrize("link", [True, False], ids=["linked", "copied"])
def test_the_old_file_stays_whole_until_the_rename(tmp_path, monkeypatch, request, link):
    if not link:
        request.getfixturevalue("links_fail")
    source = spool_file(tmp_path, b"new version")
    dest = tmp_path / "out" / "a.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old version")
    replace = os.replace
    seen_at_rename = []

    def watched_replace(temp, target):
        seen_at_rename.append((Path(target).read_bytes(), Path(temp).read_bytes()))
        replace(temp, target)

    monkeypatch.setattr(os, "replace", watched_replace)

    publish_file(source, dest)

    assert seen_at_rename == [(b"old version", b"new version")]
    assert dest.read_bytes() == b"new version"
    assert entries(dest.parent) == ["a.bin"]


def test_a_directory_in_the_way_raises_and_leaves_no_temp_file(tmp_path):
    source = spool_file(tmp_path)
    dest = tmp_path / "out" / "a.bin"
    (dest / "inside").mkdir(parents=True)

    with pytest.raises(OSError):
        publish_file(source, dest)

    assert entries(dest.parent) == ["a.bin"] and entries(dest) == ["inside"]
    assert source.read_bytes() == b"verified bytes"


def test_a_file_where_a_directory_must_be_raises_and_leaves_it_alone(tmp_path):
    source = spool_file(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "lab").write_bytes(b"a file named like the source folder")

    with pytest.raises(OSError):
        publish_file(source, out / "lab" / "runs" / "a.bin")

    assert entries(out) == ["lab"] and (out / "lab").read_bytes() == b"a file named like the source folder"


def test_an_output_directory_that_is_a_file_raises(tmp_path):
    source = spool_file(tmp_path)
    out = tmp_path / "out"
    out.write_bytes(b"not a directory")

    with pytest.raises(OSError):
        publish_file(source, out / "a.bin")

    assert out.read_bytes() == b"not a directory"
    assert entries(tmp_path) == ["out", "spool"]


def test_a_failure_after_the_link_removes_the_temp_file(tmp_path, monkeypatch):
    source = spool_file(tmp_path)
    dest = tmp_path / "out" / "a.bin"

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        publish_file(source, dest)

    assert entries(dest.parent) == []
    assert source.stat().st_nlink == 1


def test_publish_sweeps_temp_files_a_killed_writer_left(tmp_path):
    source = spool_file(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):
        fd, _ = tempfile.mkstemp(prefix=".data.", suffix=".part", dir=out)  # as publish_file makes them
        os.close(fd)
    abandoned = AtomicFile(out / "data")
    abandoned._file.close()  # as if the process had been killed mid-write

    publish_file(source, out / "data")

    assert entries(out) == ["data"]


def test_a_sweep_spares_the_temp_files_of_other_destinations(tmp_path):
    """``data.csv`` and ``data.1`` are being written by other writers when ``data`` lands."""
    source = spool_file(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with AtomicFile(out / "data.csv") as csv, AtomicFile(out / "data.1") as other:
        csv.write(b"in progress")
        publish_file(source, out / "data")
        csv.write(b", still")
        csv.commit()
        other.commit()

    assert entries(out) == ["data", "data.1", "data.csv"]
    assert (out / "data.csv").read_bytes() == b"in progress, still"


def test_long_non_ascii_names_get_temp_files_within_the_name_limit(tmp_path):
    """85 CJK characters are 255 UTF-8 bytes, the most a name may have; two such names start alike."""
    out = tmp_path / "out"
    out.mkdir()
    first, second = "データ" * 28 + "一", "データ" * 28 + "二"
    assert len(first.encode()) == len(second.encode()) == 255
    with AtomicFile(out / second) as in_progress:
        in_progress.write(b"second, in progress")
        publish_file(spool_file(tmp_path), out / first)
        in_progress.commit()

    assert entries(out) == sorted([first, second])
    assert (out / first).read_bytes() == b"verified bytes"
    assert (out / second).read_bytes() == b"second, in progress"
