"""Finding files: recursion, names relative to the root, filters, symlinks, special files, bad names."""

import os
from pathlib import Path

import pytest

from client.discovery import PathFilter, discover
from client.session import default_source_name


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "b.txt").write_text("b")
    (root / "a.log").write_text("a")
    (root / "sub" / "c.txt").write_text("c")
    (root / "sub" / "deeper" / "d.bin").write_text("d")
    return root


def names(discovery):
    return [file.file_id.path for file in discovery.files]


def test_directories_are_walked_recursively_in_a_stable_order_with_paths_relative_to_the_root(tree):
    found = discover([tree], "host")
    assert names(found) == ["a.log", "b.txt", "sub/c.txt", "sub/deeper/d.bin"]
    assert {file.file_id.source for file in found.files} == {"host"}
    assert found.files[2].path == tree / "sub" / "c.txt"
    assert found.files[2].signature.size == 1
    assert found.rejected == []


def test_a_file_argument_is_named_by_its_own_name(tree):
    assert names(discover([tree / "sub" / "c.txt"], "host")) == ["c.txt"]


@pytest.mark.parametrize(
    "include, exclude, expected",
    [
        ([r"\.txt$"], [], ["b.txt", "sub/c.txt"]),
        ([], [r"^sub/"], ["a.log", "b.txt"]),
        ([r"\.txt$", r"\.bin$"], [r"deeper"], ["b.txt", "sub/c.txt"]),
        ([r"^c\.txt$"], [], []),
    ],
)
def test_include_and_exclude_match_the_relative_path(tree, include, expected, exclude):
    assert names(discover([tree], "host", PathFilter.compile(include, exclude))) == expected


def test_symlinks_inside_a_tree_are_skipped_not_followed_and_not_failures(tree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (tree / "link-dir").symlink_to(outside)
    (tree / "link-file").symlink_to(tree / "b.txt")
    found = discover([tree], "host")
    assert names(found) == ["a.log", "b.txt", "sub/c.txt", "sub/deeper/d.bin"]
    assert sorted((r.path.name, r.failure) for r in found.rejected) == [("link-dir", False), ("link-file", False)]
    assert all("symlinks are never followed" in r.reason for r in found.rejected)


def test_a_symlink_named_on_the_command_line_is_followed(tree, tmp_path):
    (tmp_path / "tree-link").symlink_to(tree)
    (tmp_path / "file-link").symlink_to(tree / "b.txt")
    assert names(discover([tmp_path / "tree-link"], "host")) == names(discover([tree], "host"))
    found = discover([tmp_path / "file-link"], "host")
    assert names(found) == ["file-link"]
    assert found.files[0].path == tree / "b.txt"


def test_special_files_are_skipped(tree):
    os.mkfifo(tree / "pipe")
    found = discover([tree], "host")
    assert "pipe" not in names(found)
    assert [(r.path.name, r.reason, r.failure) for r in found.rejected] == [
        ("pipe", "skipped: not a regular file", False)
    ]


def test_names_that_cannot_travel_and_missing_paths_are_failures_and_the_rest_goes_on(tree, tmp_path):
    (tree / "bad\x01name").write_text("x")
    found = discover([tree, tmp_path / "missing"], "host")
    assert names(found) == ["a.log", "b.txt", "sub/c.txt", "sub/deeper/d.bin"]
    reasons = {r.path.name: (r.reason, r.failure) for r in found.rejected}
    assert reasons["bad\x01name"][1] and "control character" in reasons["bad\x01name"][0]
    assert reasons["missing"] == ("cannot be read: No such file or directory", True)


def test_two_roots_giving_the_same_name_keep_the_first_and_reject_the_second(tree, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.txt").write_text("other b")
    found = discover([tree, other], "host")
    assert [file.path for file in found.files if file.file_id.path == "b.txt"] == [tree / "b.txt"]
    assert [(r.path, r.failure) for r in found.rejected] == [(other / "b.txt", True)]
    assert "same name" in found.rejected[0].reason


@pytest.mark.parametrize(
    "host, expected",
    [
        ("build-01.example.com", "build-01.example.com"),
        ("Mac Book (2)", "Mac_Book__2_"),
        ("..", "unknown-host"),
        ("", "unknown-host"),
    ],
)
def test_the_default_source_is_the_sanitised_host_name(host, expected):
    assert default_source_name(host) == expected
