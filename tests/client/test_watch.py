"""Watch decisions: when a file has settled, and when a failed one is tried again."""

import logging
from pathlib import Path

from client.discovery import FileSignature, Rejected
from client.watch import RejectionLog, SettleTracker

A = FileSignature(size=1, mtime_ns=1)
B = FileSignature(size=2, mtime_ns=2)


def test_a_file_is_ready_once_unchanged_for_the_settle_interval():
    tracker = SettleTracker(settle=5, retry_delay=10)
    assert tracker.observe({"f": A}, now=100) == []
    assert tracker.observe({"f": A}, now=104.9) == []
    assert tracker.observe({"f": A}, now=105) == ["f"]


def test_a_change_restarts_the_settle_clock():
    tracker = SettleTracker(settle=5, retry_delay=10)
    tracker.observe({"f": A}, now=100)
    assert tracker.observe({"f": B}, now=104) == []
    assert tracker.observe({"f": B}, now=108) == []
    assert tracker.observe({"f": B}, now=109) == ["f"]


def test_files_no_longer_unsent_are_forgotten():
    tracker = SettleTracker(settle=5, retry_delay=10)
    tracker.observe({"f": A, "g": A}, now=100)
    assert tracker.observe({"g": A}, now=106) == ["g"]
    assert tracker.observe({"f": A, "g": A}, now=107) == ["g"]
    assert tracker.observe({"f": A, "g": A}, now=112) == ["f", "g"]


def test_a_failed_file_waits_longer_after_each_failure_in_a_row_up_to_a_cap():
    tracker = SettleTracker(settle=1, retry_delay=10, max_retry_delay=25)
    tracker.observe({"f": A}, now=0)
    assert tracker.observe({"f": A}, now=1) == ["f"]
    tracker.failed("f", now=1)
    assert tracker.observe({"f": A}, now=10.9) == []
    assert tracker.observe({"f": A}, now=11) == ["f"]
    tracker.failed("f", now=11)
    assert tracker.observe({"f": A}, now=30.9) == []
    assert tracker.observe({"f": A}, now=31) == ["f"]
    tracker.failed("f", now=31)
    assert tracker.observe({"f": A}, now=55.9) == []
    assert tracker.observe({"f": A}, now=56) == ["f"]


def test_a_change_cancels_the_pause_after_a_failure():
    tracker = SettleTracker(settle=1, retry_delay=100)
    tracker.observe({"f": A}, now=0)
    tracker.failed("f", now=1)
    tracker.observe({"f": B}, now=2)
    assert tracker.observe({"f": B}, now=3) == ["f"]


def test_a_rejected_path_is_logged_once_while_it_stays_rejected(caplog):
    caplog.set_level(logging.INFO, logger="client")
    link = Rejected(Path("/w/link"), "skipped: symlinks are never followed", False)
    bad = Rejected(Path("/w/bad"), "name cannot travel: control character", True)
    rejections = RejectionLog()
    rejections.report([link])
    rejections.report([link, bad])
    rejections.report([link, bad])
    rejections.report([link])
    rejections.report([link, bad])
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("INFO", "/w/link: skipped: symlinks are never followed"),
        ("ERROR", "/w/bad: name cannot travel: control character"),
        ("ERROR", "/w/bad: name cannot travel: control character"),
    ]
