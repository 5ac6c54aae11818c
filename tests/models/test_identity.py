"""Path safety: every hostile name the README and the fault campaign list is refused, and for any
name that is accepted the destination stays lexically inside the output directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from models.identity import (
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    FileId,
    InvalidIdentity,
    file_partition,
    validate_relative_path,
    validate_source,
)

OUTPUT = Path("/srv/filestream/output")
# The longest path accepted: 4096 bytes, no segment over 255.
LONGEST = "/".join(["d" * 255] * 15 + ["d" * 254, "e"])

# --- Hostile names, one by one ---------------------------------------------------------------------

# The names the hostile-paths scenario (chaos/scenarios/hostile_records.py) sends (the README's hostile-paths
# row), with why each is refused, then the other kinds the README lists.
HOSTILE_PATHS = [
    ("../escape-1.txt", "'.' or '..' segment"),
    ("../../escape-2.txt", "'.' or '..' segment"),
    ("deep/../../../escape-3.txt", "'.' or '..' segment"),
    ("/tmp/escape-4.txt", "is absolute"),
    ("C:/escape-5.txt", "drive letter"),
    ("c:escape.txt", "drive letter"),
    ("..\\..\\escape-6.txt", "backslash"),
    ("dir\\file.txt", "backslash"),
    ("nul\x00/../../escape-8.txt", "NUL byte"),
    ("file\x00.txt", "NUL byte"),
    ("./escape-9.txt", "'.' or '..' segment"),
    (f"{'x' * 300}/../../escape-10.txt", "segment longer than"),
    ("..", "'.' or '..' segment"),
    (".", "'.' or '..' segment"),
    ("a/..", "'.' or '..' segment"),
    ("a/./b", "'.' or '..' segment"),
    ("", "empty path"),
    ("a//b", "empty"),
    ("a/", "empty"),
    ("/", "is absolute"),
    ("//server/share", "is absolute"),
    ("bad\x01name", "control character"),
    ("line\nbreak", "control character"),
    ("tab\there", "control character"),
    ("esc\x1b[31m", "control character"),
    ("delete\x7f", "control character"),
    ("c1\x9bcontrol", "control character"),
    ("x" * (MAX_SEGMENT_BYTES + 1), "segment longer than"),
    ("é" * (MAX_SEGMENT_BYTES // 2 + 1), "segment longer than"),  # bytes count, not characters
    ("/".join(["d" * 200] * 21), "more than 4096"),
    (LONGEST + "e", "more than 4096"),
    ("lone\udcffsurrogate", "not valid UTF-8"),
    ("\ud800", "not valid UTF-8"),
]


@pytest.mark.parametrize(("path", "reason"), HOSTILE_PATHS)
def test_a_hostile_path_is_refused_with_its_reason(path: str, reason: str) -> None:
    with pytest.raises(InvalidIdentity, match=re.escape(reason)):
        validate_relative_path(path)
    with pytest.raises(InvalidIdentity):
        FileId("lab", path)


@pytest.mark.parametrize(
    "source",
    ["..", ".", "", "a/b", "/", "lab\x00", "lab\n", "\nlab", "lab\r", "la b", "läb", "x" * 129, "lab\\x", "C:"],
)
def test_a_hostile_source_is_refused(source: str) -> None:
    with pytest.raises(InvalidIdentity, match="source name"):
        validate_source(source)
    with pytest.raises(InvalidIdentity):
        FileId(source, "file.txt")


@pytest.mark.parametrize(
    "key",
    [
        b"lab/\xff.txt",  # invalid UTF-8
        b"\xc0\xaf",  # an overlong encoding of '/'
        b"lab/\xed\xb3\xbf",  # an encoded surrogate
        b"no-separator",
        b"../etc/passwd",
        b"lab/../../etc/passwd",
        b"lab//etc/passwd",
        b"/etc/passwd",
        b"",
    ],
)
def test_a_hostile_key_is_refused(key: bytes) -> None:
    with pytest.raises(InvalidIdentity):
        FileId.from_key(key)


@pytest.mark.parametrize(
    "path",
    [
        "file.txt",
        "dir/sub/file.bin",
        "...",
        "..hidden",
        "trailing..",
        ".hidden/.config",
        "ünïcödé/名前.txt",
        "spaces and (brackets) [1].csv",
        "a/C:/b",  # a colon further in is an ordinary character on POSIX
        "x" * MAX_SEGMENT_BYTES,
        LONGEST,
    ],
)
def test_ordinary_paths_are_accepted_and_land_under_the_output_directory(path: str) -> None:
    assert validate_relative_path(path) == path
    file_id = FileId("lab-1.a_b", path)
    assert file_id.destination(OUTPUT) == OUTPUT / "lab-1.a_b" / path
    assert file_id.destination(OUTPUT).is_relative_to(OUTPUT / "lab-1.a_b")


def test_the_limits_are_exact() -> None:
    assert len(LONGEST.encode()) == MAX_PATH_BYTES
    assert validate_relative_path(LONGEST) == LONGEST
    assert validate_relative_path("é" * (MAX_SEGMENT_BYTES // 2)) == "é" * (MAX_SEGMENT_BYTES // 2)
    assert validate_source("s" * 128) == "s" * 128


def test_key_round_trip_and_the_first_slash_separates_source_from_path() -> None:
    file_id = FileId("cam2", "2024/05/01/frame.tif")
    assert file_id.key == b"cam2/2024/05/01/frame.tif"
    assert str(file_id) == "cam2/2024/05/01/frame.tif"
    assert FileId.from_key(file_id.key) == file_id


def test_from_local_takes_the_path_relative_to_the_root(tmp_path: Path) -> None:
    assert FileId.from_local("lab", tmp_path, tmp_path / "run" / "a.csv") == FileId("lab", "run/a.csv")
    with pytest.raises(InvalidIdentity, match="control character"):
        FileId.from_local("lab", tmp_path, tmp_path / "bad\x01name")


# --- Properties over generated names ----------------------------------------------------------------

# Characters an attacker would reach for, among ordinary ones, so that generated names are often
# accepted and often one character away from being refused.
_TRICKY = st.sampled_from([*"./\\\x00\x01\n\x1f\x7f\x9b:C~ é名", "\udcff", "\ud800"])
_CHARACTER = st.one_of(_TRICKY, st.characters(codec="utf-8"), st.characters())
_SEGMENT = st.one_of(
    st.sampled_from(["", ".", "..", "...", "C:", "x" * 256]),
    st.text(_CHARACTER, min_size=1, max_size=12),
)
NAMES = st.one_of(st.lists(_SEGMENT, min_size=1, max_size=6).map("/".join), st.text(_CHARACTER, max_size=40))
VALID_SOURCES = st.from_regex(r"[A-Za-z0-9._-]{1,128}", fullmatch=True)
SOURCES = st.one_of(
    VALID_SOURCES,
    st.sampled_from(["..", ".", "lab\n", "lab/x", ""]),
    st.text(_CHARACTER, max_size=10),
)


# Names mostly accepted: ordinary text with the separators and dots that make a name hostile when misplaced.
PLAUSIBLE_NAMES = st.lists(
    st.text(
        st.one_of(st.characters(codec="utf-8", exclude_categories=["Cc"]), st.sampled_from([*"./._-:~ é名"])),
        min_size=1,
        max_size=12,
    ),
    min_size=1,
    max_size=6,
).map("/".join)


def accepted(source: str, path: str) -> FileId | None:
    try:
        return FileId(source, path)
    except InvalidIdentity:
        return None


def is_accepted_path(path: str) -> bool:
    return accepted("lab", path) is not None


SAFE_SEGMENTS = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc"], exclude_characters="/\\"), min_size=1, max_size=12
).filter(is_accepted_path)
"""Single segments FileId accepts, to put a hostile part between."""


@given(st.one_of(SOURCES, VALID_SOURCES), st.one_of(NAMES, PLAUSIBLE_NAMES))
@example("lab", "a/../b")
@example("..", "b")
@example("lab\n", "b")
@example("lab", "c1\x9bcontrol")
def test_any_name_is_refused_or_has_none_of_the_refused_forms(source: str, path: str) -> None:
    if accepted(source, path) is None:
        return
    segments = path.split("/")
    assert "." not in segments and ".." not in segments and "" not in segments
    assert not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert all(ord(character) >= 32 and not 0x7F <= ord(character) <= 0x9F for character in path + source)
    assert len(path.encode()) <= MAX_PATH_BYTES
    assert all(len(segment.encode()) <= MAX_SEGMENT_BYTES for segment in segments)
    assert "/" not in source and source not in (".", "..")


@given(VALID_SOURCES, PLAUSIBLE_NAMES)
def test_any_accepted_name_resolves_lexically_inside_the_output_directory(source: str, path: str) -> None:
    file_id = accepted(source, path)
    assume(file_id is not None)
    assert file_id is not None
    destination = file_id.destination(OUTPUT)
    resolved = Path(os.path.normpath(destination))
    assert resolved.is_relative_to(OUTPUT / file_id.source)
    assert resolved != OUTPUT / file_id.source
    # normpath changed nothing: the name held no '.', '..' or empty segment to fold away.
    assert resolved == destination and str(resolved) == f"{OUTPUT}/{source}/{path}"


@given(VALID_SOURCES, PLAUSIBLE_NAMES)
def test_any_accepted_name_round_trips_through_its_key(source: str, path: str) -> None:
    file_id = accepted(source, path)
    assume(file_id is not None)
    assert file_id is not None
    assert FileId.from_key(file_id.key) == file_id
    assert file_id.key.decode("utf-8") == str(file_id)


@given(st.lists(SAFE_SEGMENTS, min_size=1, max_size=5), st.sampled_from(["..", ".", ""]), st.data())
def test_a_dot_dot_dot_or_empty_segment_anywhere_is_refused(
    segments: list[str], hostile: str, data: st.DataObject
) -> None:
    assert validate_relative_path("/".join(segments)) == "/".join(segments)
    position = data.draw(st.integers(0, len(segments)))
    with pytest.raises(InvalidIdentity):
        validate_relative_path("/".join([*segments[:position], hostile, *segments[position:]]))


@given(st.lists(SAFE_SEGMENTS, min_size=1, max_size=5), st.sampled_from(["\\", "\x00"]), st.data())
def test_a_backslash_or_nul_anywhere_or_a_leading_slash_is_refused(
    segments: list[str], character: str, data: st.DataObject
) -> None:
    path = "/".join(segments)
    assert validate_relative_path(path) == path
    with pytest.raises(InvalidIdentity, match="is absolute"):
        validate_relative_path("/" + path)
    position = data.draw(st.integers(0, len(path)))
    with pytest.raises(InvalidIdentity, match="backslash|NUL"):
        validate_relative_path(path[:position] + character + path[position:])


def test_a_file_partition_is_the_kafka_default_partitioners():
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(8))
    for key in (b"lab/a.bin", b"lab/run-001/peaks.csv", "lab/é".encode()):
        assert file_partition(key, 8) == DefaultPartitioner()(key, partitions, partitions)
