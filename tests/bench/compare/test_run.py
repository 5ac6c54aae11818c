"""bench.compare's runs: the bytes on the broker, grouped by what wrote them."""

from bench.compare.run import topic_groups


def test_topics_are_grouped_into_upload_changelogs_and_events() -> None:
    sizes = {"chunks-1": 10, "app-assemblies-changelog": 3, "app-payloads-changelog": 4, "completed-1": 2, "m": 1}
    assert topic_groups(sizes, "chunks-1") == {"upload": 10, "changelogs": 7, "events": 3}
