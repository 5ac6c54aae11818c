import os
import stat

import pytest

from models.identity import FileId
from storage.local import AtomicFile, UnsafeDestination, safe_destination


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
