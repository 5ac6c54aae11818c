"""A minimal Prometheus registry: counters, gauges and histograms in the text exposition format 0.0.4.

The worker needs a dozen metrics in one process, updated on its event loop: a hundred
lines do that without ``prometheus_client`` (its process collectors, multiprocess mode
and HTTP server are all unused here).  Label values are kept per series in insertion
order, so a scrape lists series in the order they first appeared.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

LabelValues = tuple[str, ...]


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _sample_line(name: str, label_names: Sequence[str], label_values: Sequence[str], value: float) -> str:
    if not label_names:
        return f"{name} {format_value(value)}"
    labels = ",".join(f'{n}="{_escape_label_value(v)}"' for n, v in zip(label_names, label_values, strict=True))
    return f"{name}{{{labels}}} {format_value(value)}"


class Registry:
    """The metrics of one process, rendered together for a scrape."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.extend(metric.sample_lines())
        return "\n".join(lines) + "\n"


class Metric(ABC):
    kind = "untyped"

    def __init__(self, registry: Registry, name: str, help: str, labels: Sequence[str] = ()) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels:
            if not _LABEL_RE.match(label) or label.startswith("__") or label == "le":
                raise ValueError(f"invalid label name {label!r} for {name}")
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        registry.register(self)

    def _label_values(self, labels: Mapping[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple(str(labels[name]) for name in self.label_names)

    @abstractmethod
    def sample_lines(self) -> Iterator[str]:
        """The metric's sample lines in the text exposition format."""


class _SingleValueMetric(Metric):
    def __init__(self, registry: Registry, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(registry, name, help, labels)
        self._values: dict[LabelValues, float] = {} if labels else {(): 0.0}

    def value(self, **labels: str) -> float:
        return self._values.get(self._label_values(labels), 0.0)

    def sample_lines(self) -> Iterator[str]:
        for label_values, value in self._values.items():
            yield _sample_line(self.name, self.label_names, label_values, value)


class Counter(_SingleValueMetric):
    """A total that only grows while the process lives; name it ``*_total``."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot decrease (got {amount})")
        key = self._label_values(labels)
        self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_SingleValueMetric):
    """A value that goes up and down; ``replace`` sets every series at once, dropping the ones not given."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        self._values[self._label_values(labels)] = float(value)

    def replace(self, series: Iterable[tuple[Mapping[str, str], float]]) -> None:
        self._values = {self._label_values(labels): float(value) for labels, value in series}


class Histogram(Metric):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self, registry: Registry, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        super().__init__(registry, name, help, labels)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be distinct finite numbers, got {buckets!r}")
        self.bounds = tuple(bounds)
        self._series: dict[LabelValues, _HistogramSeries] = {}
        if not labels:
            self._series[()] = _HistogramSeries(len(self.bounds))

    def observe(self, value: float, **labels: str) -> None:
        key = self._label_values(labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _HistogramSeries(len(self.bounds))
        # bisect_left: a value equal to a bound belongs in that bound's bucket (le = less or equal).
        series.bucket_counts[bisect_left(self.bounds, value)] += 1
        series.sum += value
        series.count += 1

    def sample_lines(self) -> Iterator[str]:
        bucket_labels = (*self.label_names, "le")
        for label_values, series in self._series.items():
            cumulative = 0
            for bound, bucket_count in zip((*self.bounds, math.inf), series.bucket_counts, strict=True):
                cumulative += bucket_count
                yield _sample_line(
                    f"{self.name}_bucket", bucket_labels, (*label_values, format_value(bound)), cumulative
                )
            yield _sample_line(f"{self.name}_sum", self.label_names, label_values, series.sum)
            yield _sample_line(f"{self.name}_count", self.label_names, label_values, series.count)


class _HistogramSeries:
    def __init__(self, bound_count: int) -> None:
        self.bucket_counts = [0] * (bound_count + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0
