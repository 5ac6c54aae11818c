"""Samples of a Prometheus text exposition, read with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

MetricSamples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metric_samples(exposition: str) -> MetricSamples:
    """Every sample of a Prometheus text exposition, ``(name, frozenset of label pairs) -> value``, parsed by
    prometheus_client's own parser (which refuses a malformed page)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
