"""Fail on any import cycle among the project's own modules: ``python -m devstack.import_cycles``.

Reads the import statements of every tracked ``.py`` file with :mod:`ast` (nothing is
imported), builds the graph of which project module imports which, and names every cycle:
each strongly connected component of more than one module, and each module that imports
itself, with the import lines that close it.  Exit status 1 if there is one, else 0.

What counts as an edge:

- ``import a.b`` and ``from a.b import name``: to ``a.b``; ``from a import b`` where ``a/b.py``
  (or ``a/b/__init__.py``) is a module: to ``a.b``, not to the package ``a``.  The parent
  packages a dotted import also runs are not edges: otherwise every package whose
  ``__init__`` re-exports its submodules would be a cycle with each of them.
- relative imports, resolved against the importing module's package.
- imports inside functions count (they still tie the two modules together); imports under
  ``if TYPE_CHECKING:`` do not, since they never run.

Only edges between tracked modules are kept; the standard library and third-party packages
are not in the graph.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import networkx as nx

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ImportLine:
    """One import statement of ``module`` that names the project module ``target``."""

    module: str
    target: str
    path: str
    line: int
    text: str


@dataclass(frozen=True)
class Cycle:
    modules: tuple[str, ...]
    """Sorted."""
    lines: tuple[ImportLine, ...]
    """The imports between the cycle's modules, by file and line."""


def tracked_python_files(root: Path) -> list[str]:
    """Paths, relative to ``root`` and with '/', of the ``.py`` files git tracks there that exist."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--", "*.py"], capture_output=True, check=True
    ).stdout
    return sorted(name for name in listed.decode().split("\0") if name and (root / name).is_file())


def module_name(path: str) -> str | None:
    """``a/b/c.py`` -> ``a.b.c``, ``a/b/__init__.py`` -> ``a.b``; None for a name no import can reach."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def import_lines(root: Path, files: Iterable[str]) -> tuple[set[str], list[ImportLine]]:
    """The project's modules, and every import statement of theirs that names one of them."""
    modules = {name: path for path in files if (name := module_name(path)) is not None}
    known = set(modules)
    found: list[ImportLine] = []
    for module, path in sorted(modules.items()):
        source = (root / path).read_text(encoding="utf-8")
        tree = ast.parse(source, filename=path)
        package = module if PurePosixPath(path).name == "__init__.py" else module.rpartition(".")[0]
        for node in _run_time_imports(tree):
            text = " ".join((ast.get_source_segment(source, node) or "").split())
            for target in sorted(_targets(node, package, known)):
                found.append(ImportLine(module, target, path, node.lineno, text))
    return known, found


def _run_time_imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement except those in the body of an ``if TYPE_CHECKING:``."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {target for alias in node.names if (target := _longest_known_prefix(alias.name, known))}
    base = _absolute_base(node, package)
    if base is None:
        return set()
    targets = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}" if base else alias.name
        if submodule in known:
            targets.add(submodule)
        elif base in known:
            targets.add(base)
    return targets


def _absolute_base(node: ast.ImportFrom, package: str) -> str | None:
    """The module a ``from`` import names, made absolute; None if it climbs above the top."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts):
        return None
    anchor = parts[: len(parts) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _longest_known_prefix(dotted: str, known: set[str]) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def find_cycles(modules: Iterable[str], lines: Sequence[ImportLine]) -> list[Cycle]:
    """Every strongly connected component of more than one module, and every self-import."""
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    graph.add_edges_from((line.module, line.target) for line in lines)
    self_importers = {module for module, _ in nx.selfloop_edges(graph)}
    components = [
        component
        for component in nx.strongly_connected_components(graph)
        if len(component) > 1 or component <= self_importers
    ]
    cycles = []
    for component in components:
        inside = tuple(line for line in lines if line.module in component and line.target in component)
        cycles.append(Cycle(tuple(sorted(component)), tuple(sorted(inside, key=lambda line: (line.path, line.line)))))
    return sorted(cycles, key=lambda cycle: (-len(cycle.modules), cycle.modules))


def report(cycles: Sequence[Cycle], module_count: int) -> str:
    if not cycles:
        return f"no import cycles among {module_count} modules"
    out = [f"{len(cycles)} import cycle(s) among {module_count} modules:"]
    for cycle in cycles:
        kind = "self-import" if len(cycle.modules) == 1 else f"cycle of {len(cycle.modules)} modules"
        out.append(f"\n{kind}: {', '.join(cycle.modules)}")
        # One statement can name several of the cycle's modules (from web import a, b): shown once.
        out += dict.fromkeys(f"  {line.path}:{line.line}: {line.text}" for line in cycle.lines)
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.import_cycles", description="Fail on any import cycle among the project's own modules."
    )
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the git worktree to check (default: this one)")
    args = parser.parse_args(argv)
    modules, lines = import_lines(args.root, tracked_python_files(args.root))
    cycles = find_cycles(modules, lines)
    # The report is this command's result, for a terminal or a CI log, not a diagnostic: stdout.
    print(report(cycles, len(modules)))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
