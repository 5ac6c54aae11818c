"""The shipped alert rules (promtool) and Grafana dashboard; tests/e2e/test_prometheus.py runs their PromQL for real."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import DASHBOARD, RULES, dashboard_expressions, metric_names, panels, rule_expressions

RULES_TEST = Path(__file__).with_name("rules_test.yml")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: `./dev test` installs it (apt-get install -y prometheus)")
    return found


def test_promtool_checks_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_expressions(RULES))} rules found" in result.stdout


def test_every_alert_fires_in_the_promtool_unit_tests_and_they_pass():
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert alerts == {
        "FilestreamFilesFailing",
        "FilestreamTransfersGivenUp",
        "FilestreamConsumerLagGrowing",
        "FilestreamWorkerMissing",
        "FilestreamWorkerMemoryHigh",
    }
    cases = [case for test in yaml.safe_load(RULES_TEST.read_text())["tests"] for case in test["alert_rule_test"]]
    assert {case["alertname"] for case in cases if case["exp_alerts"]} == alerts, "an alert without a firing case"
    assert {case["alertname"] for case in cases if not case["exp_alerts"]} == alerts, "an alert without a quiet case"
    result = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name], capture_output=True, text=True, cwd=RULES_TEST.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_dashboard_shows_what_on_call_needs_with_valid_promql():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    titles = {panel["title"] for panel in panels(dashboard)}
    assert {
        "Throughput",
        "Files in flight",
        "Failures by reason",
        "S3 transfers per state",
        "Consumer lag",
        "Worker memory",
    } <= titles
    for panel in panels(dashboard):
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert all('job="$job"' in target["expr"] for target in panel["targets"]), panel["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for expression in dashboard_expressions(dashboard):
        assert metric_names(expression), expression  # parses, and reads at least one metric
