"""The download plan: selection, every layout, and every refusal, decided before anything is written."""

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from client.download_plan import (
    LAYOUTS,
    DownloadPlan,
    DownloadPlanError,
    Selection,
    plan_downloads,
    select_keys,
)
from storage.objects import StoredObject

DEST = Path("/dest")
PREFIX = "stored/"
STORED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def stored(
    name: str,
    *,
    size: int = 10,
    checksum: str | None = "yH2GHg==",
    checksum_type: str | None = "FULL_OBJECT",
    last_modified: datetime = STORED_AT,
) -> StoredObject:
    """An object whose key is ``PREFIX + name``."""
    return StoredObject(PREFIX + name, size, '"etag"', last_modified, checksum, checksum_type)


def plan(
    objects: Iterable[StoredObject],
    layout: str = "mirror",
    *,
    overwrite: bool = False,
    existing: Iterable[Path] = (),
) -> DownloadPlan:
    return plan_downloads(
        objects,
        bucket_prefix=PREFIX,
        dest=DEST,
        layout=layout,
        overwrite=overwrite,
        exists=set(existing).__contains__,
    )


def destinations(download_plan: DownloadPlan) -> list[str]:
    return [str(download.destination.relative_to(DEST)) for download in download_plan.downloads]


# --- layouts -----------------------------------------------------------------------------------


def test_mirror_writes_source_and_path_below_dest():
    result = plan([stored("cam1/2024/a.bin"), stored("cam2/b.txt")])

    assert destinations(result) == ["cam1/2024/a.bin", "cam2/b.txt"]
    assert result.total_bytes == 20


def test_flat_joins_source_and_path_segments_with_the_separator():
    result = plan([stored("cam1/2024/05/a.bin"), stored("cam2/b.txt")], "flat")

    assert destinations(result) == ["cam1__2024__05__a.bin", "cam2__b.txt"]


def test_by_date_files_objects_under_the_utc_day_they_were_stored():
    late_evening_in_new_york = datetime(2024, 5, 1, 22, 30, tzinfo=timezone(timedelta(hours=-4)))

    result = plan([stored("cam1/a.bin", last_modified=late_evening_in_new_york)], "by_date")

    assert destinations(result) == ["2024-05-02/cam1/a.bin"]


def test_every_layout_is_documented_in_the_error_for_an_unknown_one():
    with pytest.raises(DownloadPlanError) as refused:
        plan([stored("cam1/a.bin")], "by_source")

    assert str(refused.value) == "unknown layout 'by_source'; valid layouts: mirror, flat, by_date"
    assert set(LAYOUTS) == {"mirror", "flat", "by_date"}


def test_an_empty_bucket_prefix_maps_the_whole_key():
    result = plan_downloads(
        [StoredObject("cam1/a.bin", 1, '"e"', STORED_AT, "AAAAAA==", None)],
        bucket_prefix="",
        dest=DEST,
        layout="mirror",
        overwrite=False,
        exists=lambda path: False,
    )

    assert destinations(result) == ["cam1/a.bin"]


# --- order -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_plan_is_in_key_order_whatever_the_input_order(layout):
    names = ["cam2/a.bin", "cam1/z.bin", "cam1/B.bin", "cam1/é.bin", "cam1/a/b.bin", "Cam0/x.bin"]

    result = plan([stored(name) for name in names], layout)

    assert [download.stored.key for download in result.downloads] == sorted(PREFIX + name for name in names)


# --- refusals: names that cannot be mapped -----------------------------------------------------


def test_keys_that_could_escape_dest_are_all_refused_in_one_error():
    hostile = [
        "cam1/../../etc/passwd",
        "cam1/a/./b",
        "cam1//abs",
        "cam1/back\\slash",
        "cam1/nul\x00byte",
        "cam1/new\nline",
        "C:/windows",
        "no-path-at-all",
        "bad source!/x",
    ]

    with pytest.raises(DownloadPlanError) as refused:
        plan([stored("cam1/fine.bin"), *(stored(name) for name in hostile)])

    message = str(refused.value)
    assert message.startswith(f"{len(hostile)} object(s) cannot be downloaded:")
    for name in hostile:
        assert f"\n  {PREFIX}{name}: " in message
    assert "fine.bin" not in message


def test_a_key_outside_the_bucket_prefix_is_refused():
    with pytest.raises(DownloadPlanError, match="other/cam1/a.bin: not below the bucket prefix 'stored/'"):
        plan([StoredObject("other/cam1/a.bin", 1, '"e"', STORED_AT, "AAAAAA==", None)])


def test_flat_refuses_names_that_already_hold_the_separator():
    with pytest.raises(DownloadPlanError) as refused:
        plan([stored("cam__1/a.bin"), stored("cam1/dir__x/a.bin"), stored("cam1/ok/a.bin")], "flat")

    message = str(refused.value)
    assert message.startswith("2 object(s) cannot be downloaded:")
    assert "stored/cam__1/a.bin: 'cam__1' already holds the flat layout's separator '__'" in message
    assert "stored/cam1/dir__x/a.bin: 'dir__x' already holds the flat layout's separator '__'" in message


def test_the_same_names_are_fine_in_the_mirror_layout():
    assert destinations(plan([stored("cam__1/a.bin"), stored("cam1/dir__x/a.bin")])) == [
        "cam1/dir__x/a.bin",
        "cam__1/a.bin",
    ]


def test_flat_refuses_a_flattened_name_longer_than_a_file_name_may_be():
    deep = "/".join(["d" * 100] * 3) + "/a.bin"  # every segment is legal, the joined name is not

    with pytest.raises(DownloadPlanError, match="longer than a file name may be"):
        plan([stored(f"cam1/{deep}")], "flat")


@pytest.mark.parametrize(
    "checksum, checksum_type, reason",
    [
        (None, None, "no CRC32 checksum stored with the object"),
        ("yH2GHg==-3", None, "composite multipart checksum yH2GHg==-3"),
        ("yH2GHg==", "COMPOSITE", "composite multipart checksum yH2GHg=="),
    ],
)
def test_an_object_without_a_full_object_crc32_is_refused(checksum, checksum_type, reason):
    with pytest.raises(DownloadPlanError, match=re.escape(f"stored/cam1/a.bin: cannot be verified, {reason}")):
        plan([stored("cam1/a.bin", checksum=checksum, checksum_type=checksum_type)])


# --- refusals: conflicts -----------------------------------------------------------------------


def test_two_objects_for_one_destination_are_refused_naming_both():
    # '__' inside a segment is refused, but an '_' at a segment's edge merges with the separator.
    with pytest.raises(DownloadPlanError) as refused:
        plan([stored("cam1/a_/b"), stored("cam1/a/_b")], "flat")

    assert str(refused.value) == (
        "1 destination conflict(s):\n  /dest/cam1__a___b: written for both stored/cam1/a/_b and stored/cam1/a_/b"
    )


def test_a_duplicated_object_is_a_conflict():
    with pytest.raises(
        DownloadPlanError, match=r"/dest/cam1/a\.bin: written for both stored/cam1/a\.bin and stored/cam1/a\.bin"
    ):
        plan([stored("cam1/a.bin"), stored("cam1/a.bin")])


def test_a_file_where_another_download_needs_a_directory_is_a_conflict():
    # S3 holds 'x' and 'x/y' side by side; a file system cannot.
    with pytest.raises(DownloadPlanError) as refused:
        plan([stored("cam1/x/y/z.bin"), stored("cam1/x"), stored("cam1/x/y")])

    assert str(refused.value) == (
        "3 destination conflict(s):\n"
        "  /dest/cam1/x: written for stored/cam1/x, but stored/cam1/x/y needs it as a directory\n"
        "  /dest/cam1/x/y: written for stored/cam1/x/y, but stored/cam1/x/y/z.bin needs it as a directory\n"
        "  /dest/cam1/x: written for stored/cam1/x, but stored/cam1/x/y/z.bin needs it as a directory"
    )


# --- refusals: existing destinations -----------------------------------------------------------


def test_existing_destinations_are_listed_together_the_first_20_then_a_count():
    objects = [stored(f"cam1/{index:02d}.bin") for index in range(30)]
    existing = [DEST / "cam1" / f"{index:02d}.bin" for index in range(25)]

    with pytest.raises(DownloadPlanError) as refused:
        plan(objects, existing=existing)

    lines = str(refused.value).splitlines()
    assert lines[0] == "25 destination(s) already exist; use --overwrite to replace them:"
    assert lines[1:21] == [f"  /dest/cam1/{index:02d}.bin" for index in range(20)]
    assert lines[21:] == ["  ... and 5 more"]


def test_with_overwrite_existing_destinations_are_planned():
    objects = [stored("cam1/a.bin"), stored("cam1/b.bin")]

    result = plan(objects, overwrite=True, existing=[DEST / "cam1" / "a.bin"])

    assert destinations(result) == ["cam1/a.bin", "cam1/b.bin"]


def test_destinations_are_not_looked_up_when_the_plan_is_refused_earlier():
    looked_up = []
    with pytest.raises(DownloadPlanError, match="conflict"):
        plan_downloads(
            [stored("cam1/a.bin"), stored("cam1/a.bin")],
            bucket_prefix=PREFIX,
            dest=DEST,
            layout="mirror",
            overwrite=False,
            exists=looked_up.append,
        )
    assert looked_up == []


# --- selection ---------------------------------------------------------------------------------

KEYS = [
    "stored/cam1/2024/a.bin",
    "stored/cam1/2024/b.txt",
    "stored/cam1/2025/c.bin",
    "stored/cam2/2024/d.bin",
    "stored/cam2/folder/",  # a folder marker, not a file
    "storedx/cam1/e.bin",  # shares the text of the prefix but is not below the folder
]


@pytest.mark.parametrize(
    "selection, expected",
    [
        (
            Selection(),
            ["stored/cam1/2024/a.bin", "stored/cam1/2024/b.txt", "stored/cam1/2025/c.bin", "stored/cam2/2024/d.bin"],
        ),
        (Selection(sources=("cam2",)), ["stored/cam2/2024/d.bin"]),
        (Selection(sources=("cam1", "cam2"), prefix="cam1/2024"), ["stored/cam1/2024/a.bin", "stored/cam1/2024/b.txt"]),
        (
            Selection(match=re.compile(r"\.bin$")),
            ["stored/cam1/2024/a.bin", "stored/cam1/2025/c.bin", "stored/cam2/2024/d.bin"],
        ),
        (
            Selection(sources=("cam1",), match=re.compile("^cam1/2024/")),
            ["stored/cam1/2024/a.bin", "stored/cam1/2024/b.txt"],
        ),
        (
            Selection(prefix="cam"),
            ["stored/cam1/2024/a.bin", "stored/cam1/2024/b.txt", "stored/cam1/2025/c.bin", "stored/cam2/2024/d.bin"],
        ),
    ],
)
def test_selection_by_source_prefix_and_regex_on_source_slash_path(selection, expected):
    assert select_keys(KEYS, bucket="b", bucket_prefix="/stored/", selection=selection) == expected


def test_a_selection_that_matches_nothing_is_an_error_naming_the_filters():
    selection = Selection(sources=("cam3",), prefix="cam3/x", match=re.compile("y"))

    with pytest.raises(DownloadPlanError) as refused:
        select_keys(KEYS, bucket="b", bucket_prefix="stored", selection=selection)

    assert str(refused.value) == (
        "nothing to download: no object in s3://b/stored/ matches (--source cam3 --prefix cam3/x --match y)"
    )


def test_an_empty_bucket_is_an_error_too():
    with pytest.raises(DownloadPlanError, match=r"no object in s3://b/ matches \(no filter\)"):
        select_keys([], bucket="b", bucket_prefix="", selection=Selection())
