import asyncio

import orjson
import pytest

from web.paging import (
    MAX_LIMIT,
    MAX_OFFSET,
    ROWS_PER_YIELD,
    Newest,
    Page,
    QueryError,
    choice,
    cooperative,
)


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, Page(100, 0)),
        ({"limit": "5", "offset": "10"}, Page(5, 10)),
        ({"limit": "100000"}, Page(MAX_LIMIT, 0)),
        ({"limit": str(MAX_OFFSET), "offset": str(MAX_OFFSET)}, Page(MAX_LIMIT, MAX_OFFSET)),
        ({"limit": "", "offset": ""}, Page(100, 0)),  # an empty form field means "not given"
        ({"limit": "007", "offset": "0" * 5000 + "3"}, Page(7, 3)),
    ],
)
def test_limit_and_offset_in_range(query, expected):
    assert Page.from_query(query) == expected


@pytest.mark.parametrize(
    "parameter, text",
    [
        ("offset", "99999999999999999999"),  # the 500: beyond what the JSON answer can carry
        ("offset", str(MAX_OFFSET + 1)),
        ("limit", str(MAX_OFFSET + 1)),
        ("offset", "-5"),
        ("limit", "-1"),
        ("limit", "0"),
        ("limit", "ten"),
        ("offset", "1e3"),
        ("offset", "1.0"),
        ("offset", "+3"),
        ("offset", " 3"),
        ("offset", "1_000"),
        ("offset", "\uff11"),  # FULLWIDTH DIGIT ONE: int() takes it
        ("offset", "\x00"),
        ("limit", "9" * 5000),  # int() itself refuses more than 4300 digits, with another error
    ],
)
def test_a_limit_or_offset_that_is_no_number_in_range_is_refused_naming_it(parameter, text):
    with pytest.raises(QueryError) as raised:
        Page.from_query({parameter: text})
    body = raised.value.body()
    assert body["parameter"] == parameter
    assert body["error"].startswith(f"{parameter}: expected a whole number from ")
    assert len(body["error"]) < 200, "a long value is quoted shortened"
    orjson.dumps(body)  # the 400 answer itself can be encoded


def test_every_page_in_range_can_be_encoded():
    page = Page.from_query({"offset": str(MAX_OFFSET)})
    assert orjson.loads(orjson.dumps(page.body("files", [], 0)))["offset"] == MAX_OFFSET


def test_a_filter_value_must_be_one_the_view_knows():
    allowed = ["assembling", "completed", "failed"]
    assert choice({"status": "failed"}, "status", allowed) == "failed"
    assert choice({}, "status", allowed) is None
    assert choice({"status": ""}, "status", allowed) is None
    for text in ("bogus", "Failed", "failed ", "\udcff"):
        with pytest.raises(QueryError, match="status: expected one of assembling, completed, failed") as raised:
            choice({"status": text}, "status", allowed)
        assert raised.value.parameter == "status"


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
