import os
import stat
from pathlib import Path

import pytest

from models.identity import FileId
from storage.local import AtomicFile, UnsafeDestination, confined_destination, safe_destination


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
