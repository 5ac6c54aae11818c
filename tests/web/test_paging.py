import asyncio

import pytest

from web.paging import MAX_LIMIT, ROWS_PER_YIELD, Newest, Page, cooperative


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, Page(100, 0)),
        ({"limit": "5", "offset": "10"}, Page(5, 10)),
        ({"limit": "100000"}, Page(MAX_LIMIT, 0)),
        ({"limit": "0", "offset": "-3"}, Page(1, 0)),
        ({"limit": "ten", "offset": "x"}, Page(100, 0)),
    ],
)
def test_limit_and_offset_are_clamped(query, expected):
    assert Page.from_query(query) == expected


def test_a_page_holds_its_rows_and_counts_them_all():
    rows, total = asyncio.run(Page(limit=3, offset=4).collect(iter(range(10))))
    assert (rows, total) == ([4, 5, 6], 10)
    body = Page(limit=3, offset=4).body("files", rows, total, states={"valid": 1})
    assert body == {"states": {"valid": 1}, "total": 10, "offset": 4, "limit": 3, "next_offset": 7, "files": [4, 5, 6]}
    assert Page(limit=3, offset=9).body("files", [9], 10)["next_offset"] is None


def test_a_page_of_100_000_rows_stays_bounded():
    rows, total = asyncio.run(Page.from_query({"limit": "1000000"}).collect(range(100_000)))
    assert len(rows) == MAX_LIMIT and total == 100_000


def test_newest_first_keeps_only_what_the_page_needs():
    rows = [("a", 5.0), ("b", 1.0), ("c", 9.0), ("d", 5.0), ("e", 7.0)]
    page, total = asyncio.run(Page(limit=2, offset=1).collect_newest(rows, key=lambda row: row[1]))
    assert total == 5
    assert page == [("e", 7.0), ("d", 5.0)]  # equal keys: the later row first


def test_newest_holds_at_most_its_size():
    newest = Newest(3)
    for value in [4, 8, 1, 9, 2, 7]:
        newest.offer(value, {"unorderable": value})  # rows themselves are never compared
    assert [row["unorderable"] for row in newest.rows()] == [9, 8, 7]


def test_long_scans_let_other_tasks_run():
    others_ran = []

    async def other():
        others_ran.append(True)

    async def scan():
        asyncio.ensure_future(other())
        seen = {}
        async for index in cooperative(range(2 * ROWS_PER_YIELD)):
            if index in (0, ROWS_PER_YIELD):
                seen[index] = bool(others_ran)
        return seen

    assert asyncio.run(scan()) == {0: False, ROWS_PER_YIELD: True}
