"""The rules of the domain are plain modules: importing one brings in neither Faust nor boto3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DOMAIN_MODULES = [
    "tables.assembly",  # the generation policy
    "tables.chunk_set",  # chunk bookkeeping
    "models.bounds",  # header bounds
    "models.identity",  # path safety of names
    "storage.local",  # path safety on disk
    "tables.transfer_state",  # the transfer state machine
    "tables.transfer_driver",  # and its driver
    "client.download_plan",  # download planning
]


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_a_domain_module_imports_neither_faust_nor_boto3(module: str) -> None:
    probe = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "print(sorted(name for name in ('faust', 'boto3', 'botocore') if name in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
