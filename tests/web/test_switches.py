"""FILESTREAM_VIEWS_ENABLED, FILESTREAM_WEB_ENABLED and Faust's own pages, checked on the app as `faust worker`
configures it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# What `faust worker` does (autodiscovery, its default --with-web flag, the web server's routes with Faust's own
# pages), then what the worker would serve.
PROBE = """
import json
from app import app
app.discover()  # as `faust -A app` does: the views register themselves when found
app.conf.web_enabled = True
app.web.init_server()
print(json.dumps({
    "web_server": bool(list(app.boot_strategy.web_server())),
    "paths": sorted({route.resource.canonical for route in app.web.web_app.router.routes()}),
}))
"""


def worker_web(tmp_path: Path, **settings: str) -> dict:
    env = {**os.environ, "FILESTREAM_DATA_DIR": str(tmp_path), **settings}
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_views_are_served_by_default(tmp_path):
    web = worker_web(tmp_path)
    assert web["web_server"]
    assert {"/filestream/health/", "/filestream/dashboard/", "/metrics", "/filestream/file/{source}/{path}"} <= set(
        web["paths"]
    )


def test_views_off_keeps_only_health(tmp_path):
    web = worker_web(tmp_path, FILESTREAM_VIEWS_ENABLED="false")
    assert web["web_server"]
    assert [path for path in web["paths"] if path.startswith("/filestream/") or path == "/metrics"] == [
        "/filestream/health/"
    ]


def test_web_off_wins_over_the_worker_command_default(tmp_path):
    assert not worker_web(tmp_path, FILESTREAM_WEB_ENABLED="false")["web_server"]


def test_faust_pages_stay_off_whatever_faust_variables_say(tmp_path):
    # Each of these would switch a Faust page on if it were an App argument: Faust's environment wins over those.
    faust_switches = {
        "APP_DEBUG": "true",
        "APP_WEB_TABLES_ENABLED": "true",
        "APP_WEB_ROUTER_ENABLED": "true",
        "APP_WEB_STATS_ENABLED": "true",
        "APP_WEB_GRAPH_ENABLED": "true",
        "APP_WEB_METRICS_ENABLED": "true",
    }
    paths = worker_web(tmp_path, **faust_switches)["paths"]
    # `/` is Faust's production index, {"status": "OK"}, served whenever its statistics are off.
    assert [path for path in paths if not path.startswith("/filestream/") and path != "/metrics"] == ["/"]
