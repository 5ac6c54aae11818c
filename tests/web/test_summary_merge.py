"""web/summary_merge.py: the summaries of several workers merged into the cluster's."""

from web.summary_merge import IN_FLIGHT_SHOWN, merge_summaries


def worker(url, *, completed, in_flight=(), finished=(), bytes_per_second=0.0):
    return {
        "workers": [{"url": url, "partitions": [0]}],
        "throughput": {"bytes_per_second": bytes_per_second, "files_per_second": 1.0},
        "counters": {"files_completed": completed, "chunks_rejected": {"stale": 1, "malformed": 0}},
        "files": {"assembling": len(in_flight), "completed": completed, "failed": 0},
        "transfers": {"valid": completed, "failed": 0},
        "in_flight": [{"file": name, "idle_seconds": idle} for name, idle in in_flight],
        "recent_completed": [{"file": name, "finished_at": at} for name, at in finished],
        "recent_failures": [],
        "transfer_failures": [],
    }


def test_summaries_of_several_workers_add_up_and_merge_newest_first():
    merged = merge_summaries(
        [
            worker("http://a", completed=2, in_flight=[("a1", 5.0)], finished=[("a2", 100.0)], bytes_per_second=10.0),
            worker("http://b", completed=3, in_flight=[("b1", 1.0)], finished=[("b2", 200.0)], bytes_per_second=5.0),
            {"workers": [{"url": "http://c", "error": "ClientConnectorError: refused"}]},
        ]
    )
    assert [w["url"] for w in merged["workers"]] == ["http://a", "http://b", "http://c"]
    assert merged["throughput"] == {"bytes_per_second": 15.0, "files_per_second": 2.0}
    assert merged["counters"] == {"files_completed": 5, "chunks_rejected": {"stale": 2, "malformed": 0}}
    assert merged["files"] == {"assembling": 2, "completed": 5, "failed": 0}
    assert merged["transfers"] == {"valid": 5, "failed": 0}
    assert [row["file"] for row in merged["in_flight"]] == ["b1", "a1"]  # most recently active first
    assert [row["file"] for row in merged["recent_completed"]] == ["b2", "a2"]


def test_merged_lists_are_cut_to_size():
    many = [worker(f"http://w{i}", completed=1, in_flight=[(f"f{i}", float(i))]) for i in range(IN_FLIGHT_SHOWN + 10)]
    assert len(merge_summaries(many)["in_flight"]) == IN_FLIGHT_SHOWN
