"""The service units of deploy/systemd/, as `systemd-analyze verify` reads them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.worker import PROJECT_ROOT

UNITS = PROJECT_ROOT / "deploy" / "systemd"
INSTALL_DIR = "/opt/filestream"  # where the units expect the checkout and its .venv


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: `./dev test` installs it (apt-get install -y systemd)")
    return found


def installed_units(tmp_path: Path) -> Path:
    """The units as installed from this checkout: pointing at its own .venv instead of /opt/filestream."""
    for unit in UNITS.glob("*.service"):
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALL_DIR, str(PROJECT_ROOT)))
    return tmp_path


def test_systemd_analyze_verifies_the_worker_and_upload_units(tmp_path):
    units = installed_units(tmp_path)
    result = subprocess.run(
        [
            systemd_analyze(),
            "verify",
            str(units / "filestream-worker@a.service"),
            str(units / "filestream-upload@lab.service"),
        ],
        capture_output=True,
        text=True,
    )
    # verify prints a line for every setting it cannot parse and every command it cannot run.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_would_catch_a_broken_unit(tmp_path):
    units = installed_units(tmp_path)
    worker = units / "filestream-worker@.service"
    worker.write_text(worker.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = subprocess.run(
        [systemd_analyze(), "verify", str(units / "filestream-worker@a.service")], capture_output=True, text=True
    )
    assert "Failed to parse service restart specifier" in result.stderr


def test_the_units_restart_stop_gracefully_and_read_their_environment_files():
    worker = (UNITS / "filestream-worker@.service").read_text()
    upload = (UNITS / "filestream-upload@.service").read_text()
    for unit in (worker, upload):
        assert "Restart=on-failure" in unit
        assert "EnvironmentFile=/etc/filestream/filestream.env" in unit
    assert "TimeoutStopSec=60" in worker and "EnvironmentFile=-/etc/filestream/worker-%i.env" in worker
    assert "upload --watch --source %i" in upload
    # Two workers on one host need their own web ports: the example instance files set them.
    ports = {(UNITS / f"worker-{name}.env").read_text().split("FILESTREAM_WEB_PORT=")[1].split()[0] for name in "ab"}
    assert len(ports) == 2
