"""The import-cycle check on small synthetic trees: what it finds, what it lets pass, what it prints."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devstack.import_cycles import find_cycles, import_lines, main, module_name, tracked_python_files


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root`` and track them in a fresh git repository there."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    return root


def cycles_of(root: Path) -> list[tuple[str, ...]]:
    modules, lines = import_lines(root, tracked_python_files(root))
    return [cycle.modules for cycle in find_cycles(modules, lines)]


def test_an_acyclic_tree_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "import os\nfrom models import chunk\nfrom models.identity import FileId\n",
            "models/__init__.py": "from models.identity import FileId\n",
            "models/identity.py": "import re\nfrom models import chunk\n",
            "models/chunk.py": "from __future__ import annotations\n\nimport orjson\n",
            "agents/worker.py": "import app\nimport models.chunk\nfrom . import helpers\n",
            "agents/helpers.py": "from models.identity import FileId\n",
        },
    )
    assert cycles_of(root) == []
    assert main(["--root", str(root)]) == 0
    assert capsys.readouterr().out == "no import cycles among 6 modules\n"


def test_a_two_module_cycle_is_named_with_its_import_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": '"""The app."""\n\nimport os\n\nimport agents.reassembly  # registers the agent\n',
            "agents/__init__.py": "",
            "agents/reassembly.py": "from app import (\n    app,\n    settings,\n)\n",
            "models/chunk.py": "import app\n",
        },
    )
    assert cycles_of(root) == [("agents.reassembly", "app")]
    assert main(["--root", str(root)]) == 1
    assert capsys.readouterr().out == (
        "1 import cycle(s) among 4 modules:\n"
        "\n"
        "cycle of 2 modules: agents.reassembly, app\n"
        "  agents/reassembly.py:1: from app import ( app, settings, )\n"
        "  app.py:5: import agents.reassembly\n"
    )


def test_a_longer_cycle_is_one_component_and_a_separate_cycle_is_another(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "a.py": "import b\n",
            "b.py": "from c import thing\n",
            "c.py": "import d\n",
            "d.py": "def later():\n    import a  # deferred, but still a tie\n",
            "e.py": "import f\nimport a\n",
            "f.py": "import e\n",
            "g.py": "import a\n",
        },
    )
    assert cycles_of(root) == [("a", "b", "c", "d"), ("e", "f")]


def test_a_from_package_import_module_cycle(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "web/__init__.py": "",
            "web/views.py": "from web import summary, dashboard\n",
            "web/summary.py": "from web import views\n",
            "web/dashboard.py": "X = 1\n",
        },
    )
    assert cycles_of(root) == [("web.summary", "web.views")]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "pkg/__init__.py": "from .inner import run\n",
            "pkg/inner/__init__.py": "from .. import tools\nfrom .run import go as run\n",
            "pkg/inner/run.py": "from ..tools import helper\n",
            "pkg/tools.py": "from .inner.run import go\n",
        },
    )
    assert cycles_of(root) == [("pkg.inner.run", "pkg.tools")]


def test_a_module_importing_itself_is_a_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(tmp_path, {"app.py": "import logging\nimport app\n", "other.py": "import app\n"})
    assert cycles_of(root) == [("app",)]
    assert main(["--root", str(root)]) == 1
    assert "self-import: app\n  app.py:2: import app\n" in capsys.readouterr().out


def test_a_package_reexporting_its_submodules_is_not_a_cycle(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "ext/__init__.py": "from ext.registry import FORMATS\nfrom ext import limits\n",
            "ext/registry.py": "from ext import limits\nfrom ext.text import extract_text\n",
            "ext/text.py": "from ext import limits\n",
            "ext/limits.py": "MAX = 1\n",
        },
    )
    assert cycles_of(root) == []


def test_a_from_import_of_a_name_is_an_edge_to_the_package(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "ext/__init__.py": "from ext.registry import FORMATS\n",
            "ext/registry.py": "from ext import extract  # a function of the package, not a module\n",
        },
    )
    assert cycles_of(root) == [("ext", "ext.registry")]


def test_type_checking_imports_are_not_edges(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "storage.py": "import typing\nif typing.TYPE_CHECKING:\n    from models import FileId\nelse:\n    pass\n",
            "models.py": "from storage import write\n",
            "local.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import models\nelse:\n    import storage\n"
            ),
            "storage2.py": "import local\n",
        },
    )
    assert cycles_of(root) == []
    (root / "storage2.py").unlink()  # tracked, gone from the worktree: skipped
    (root / "local.py").write_text("from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    import models\n")
    (root / "models.py").write_text("import local\n")
    assert cycles_of(root) == [("local", "models")]


def test_untracked_files_are_not_read(tmp_path: Path) -> None:
    root = tree(tmp_path, {"a.py": "import b\n", "b.py": "X = 1\n"})
    (root / "b.py").write_text("import a\n")  # tracked: its new text counts
    (root / "c.py").write_text("import a\n")
    (root / "a2.py").write_text("import c\n")
    assert tracked_python_files(root) == ["a.py", "b.py"]
    assert cycles_of(root) == [("a", "b")]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("app.py", "app"),
        ("agents/reassembly.py", "agents.reassembly"),
        ("processors/extractors/__init__.py", "processors.extractors"),
        ("__init__.py", None),
        ("scripts/my-tool.py", None),
    ],
)
def test_module_names(path: str, name: str | None) -> None:
    assert module_name(path) == name
