"""A strict reader of the Prometheus text format, for tests: what a scraper would make of a page."""

from __future__ import annotations

import re

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_samples(text: str) -> Samples:
    """Every sample as ``(name, frozenset of label pairs) -> value``; fails on any malformed line."""
    samples: Samples = {}
    types: dict[str, str] = {}
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = _SAMPLE_RE.match(line)
        assert match, f"malformed sample line {line!r}"
        name, labels_text, value = match.groups()
        labels: list[tuple[str, str]] = []
        if labels_text:
            consumed = 0
            for label in _LABEL_RE.finditer(labels_text):
                assert label.start() == consumed, f"malformed labels in {line!r}"
                labels.append((label.group(1), _unescape(label.group(2))))
                consumed = label.end()
            assert consumed == len(labels_text), f"malformed labels in {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} has no TYPE line"
        key = (name, frozenset(labels))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)
    return samples


def sample(samples: Samples, name: str, /, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]
