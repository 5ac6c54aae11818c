"""The registration API: decorators, names, matching, module loading."""

from __future__ import annotations

import sys

import pytest

from models.identity import FileId
from processors.api import Kind, RegistrationError, Registry, load_modules


def noop(file, lock):
    return None


def test_decorators_register_and_return_the_function_unchanged():
    registry = Registry()
    assert registry.processor(name="report", match=r"\.csv$")(noop) is noop
    assert registry.reproducer(name="stats", topic="stats-topic", concurrency=3)(noop) is noop
    assert registry.names() == ["report", "stats"]
    report, stats = list(registry)
    assert (report.kind, report.topic, report.concurrency) == (Kind.PROCESSOR, None, 1)
    assert (stats.kind, stats.topic, stats.concurrency) == (Kind.REPRODUCER, "stats-topic", 3)
    assert registry.get("stats") is stats and registry.get("missing") is None


def test_match_searches_the_identity_source_slash_path():
    registry = Registry()
    registry.processor(name="csv", match=r"\.csv$")(noop)
    registry.processor(name="lab2", match=r"^lab2/")(noop)
    registry.processor(name="everything")(noop)
    csv, lab2, everything = list(registry)
    assert csv.selects(FileId("lab1", "run/a.csv")) and not csv.selects(FileId("lab1", "run/a.csv.gz"))
    assert lab2.selects(FileId("lab2", "x.bin")) and not lab2.selects(FileId("lab1", "lab2/x.bin"))
    assert everything.selects(FileId("any", "thing"))


@pytest.mark.parametrize(
    "register, message",
    [
        (lambda r: r.processor(name="bad name")(noop), "bad name"),
        (lambda r: r.processor(name="x/y")(noop), "x/y"),
        (lambda r: r.processor(name="p", match="(")(noop), "not a regular expression"),
        (lambda r: r.reproducer(name="p", topic="bad topic")(noop), "Kafka topic"),
        (lambda r: r.processor(name="p", concurrency=0)(noop), "concurrency"),
    ],
)
def test_invalid_registrations_are_refused_naming_the_problem(register, message):
    registry = Registry()
    with pytest.raises(RegistrationError, match=message):
        register(registry)
    assert len(registry) == 0


def test_a_name_is_registered_once():
    registry = Registry()
    registry.processor(name="same")(noop)
    with pytest.raises(RegistrationError, match="already registered"):
        registry.reproducer(name="same", topic="t")(noop)


def test_load_modules_imports_and_names_a_missing_module(tmp_path, monkeypatch):
    (tmp_path / "user_procs_ok.py").write_text("LOADED = True\n")
    (tmp_path / "user_procs_broken.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_modules(("user_procs_ok",))
    assert sys.modules["user_procs_ok"].LOADED
    with pytest.raises(RegistrationError, match="'user_procs_missing'"):
        load_modules(("user_procs_missing",))
    # A module that exists but fails to import is its author's bug: the original error, with its traceback.
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        load_modules(("user_procs_broken",))
