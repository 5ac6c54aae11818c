"""errors.py: every exception class the project defines derives from FilestreamError, so a new one cannot slip in.

Every tracked module outside tests/ is imported, in a subprocess: tests/agents must be the first
to import ``app`` in this process (see tests/agents/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Every exception class defined in a project module: its dotted name and whether it is a FilestreamError.
PROBE = """
import importlib, json
from devstack.import_cycles import PROJECT_ROOT, module_name, tracked_python_files
from errors import FilestreamError

modules = {
    name for path in tracked_python_files(PROJECT_ROOT)
    if not path.startswith("tests/") and (name := module_name(path)) is not None
}
for name in sorted(modules):
    importlib.import_module(name)

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

print(json.dumps(sorted(
    (f"{cls.__module__}.{cls.__qualname__}", issubclass(cls, FilestreamError))
    for cls in set(subclasses(BaseException)) if cls.__module__ in modules
)))
"""


def project_exceptions(tmp_path: Path) -> dict[str, bool]:
    env = {**os.environ, "FILESTREAM_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.splitlines()[-1]))


def test_every_exception_class_of_the_project_derives_from_filestream_error(tmp_path: Path) -> None:
    found = project_exceptions(tmp_path)
    # The probe sees classes of every kind of module: plain rules, storage, clients, agents' tables, the devstack.
    assert {
        "models.chunk.ChunkDecodeError",
        "storage.s3.S3Unreachable",
        "client.uploader.UploadAborted",
        "tables.transfer_driver.TransferFailed",
        "devstack.kafka.KafkaUnavailable",
        "bench.common.Stall",
        "settings.values.SettingsError",
        "tables.files.AssignmentLost",
    } <= set(found)
    assert sorted(name for name, derives in found.items() if not derives) == []
