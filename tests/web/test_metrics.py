import math

import pytest

from metrics import Counter, Gauge, Histogram, Registry, format_value
from tests.prometheus_text import parse_samples, sample


def test_counters_gauges_and_histograms_render_as_prometheus_reads_them():
    registry = Registry()
    chunks = Counter(registry, "chunks_total", "Chunks.")
    rejected = Counter(registry, "rejected_total", "Rejected chunks.", labels=("reason",))
    states = Gauge(registry, "transfers", "Transfers by state.", labels=("state",))
    latency = Histogram(registry, "latency_seconds", "Latency.", buckets=(1, 0.1, 10))
    chunks.inc()
    chunks.inc(2.5)
    rejected.inc(reason="bad_hash")
    rejected.inc(0, reason="stale")
    states.set(3, state="valid")
    for value in (0.05, 0.1, 0.5, 1, 20):
        latency.observe(value)

    text = registry.render()
    samples = parse_samples(text)
    assert "# TYPE chunks_total counter" in text and "# TYPE latency_seconds histogram" in text
    assert sample(samples, "chunks_total") == 3.5
    assert sample(samples, "rejected_total", reason="bad_hash") == 1
    assert sample(samples, "rejected_total", reason="stale") == 0
    assert sample(samples, "transfers", state="valid") == 3
    # Cumulative buckets, a value equal to a bound counted in it, +Inf holding every observation.
    assert [sample(samples, "latency_seconds_bucket", le=le) for le in ("0.1", "1", "10", "+Inf")] == [2, 4, 4, 5]
    assert sample(samples, "latency_seconds_count") == 5
    assert sample(samples, "latency_seconds_sum") == pytest.approx(21.65)


def test_label_values_and_help_are_escaped():
    registry = Registry()
    gauge = Gauge(registry, "odd", "Help with a \\ and a\nnewline.", labels=("name",))
    gauge.set(1, name='quote " backslash \\ newline \n end')
    text = registry.render()
    assert "# HELP odd Help with a \\\\ and a\\nnewline." in text
    assert sample(parse_samples(text), "odd", name='quote " backslash \\ newline \n end') == 1


def test_gauge_replace_drops_series_not_given():
    registry = Registry()
    lag = Gauge(registry, "lag", "Lag.", labels=("partition",))
    lag.replace([({"partition": "0"}, 5), ({"partition": "1"}, 0)])
    lag.replace([({"partition": "1"}, 2)])
    assert set(parse_samples(registry.render())) == {("lag", frozenset({("partition", "1")}))}


def test_misuse_is_refused():
    registry = Registry()
    counter = Counter(registry, "done_total", "Done.", labels=("kind",))
    with pytest.raises(ValueError):
        counter.inc(-1, kind="a")
    with pytest.raises(ValueError):
        counter.inc(kind="a", extra="b")
    with pytest.raises(ValueError):
        Counter(registry, "done_total", "Again.")
    with pytest.raises(ValueError):
        Gauge(registry, "bad-name", "Dash.")
    with pytest.raises(ValueError):
        Histogram(registry, "h", "Reserved label.", buckets=(1,), labels=("le",))


def test_values_format_like_prometheus():
    assert [format_value(v) for v in (3.0, 0.25, math.inf, -math.inf, 1e20)] == ["3", "0.25", "+Inf", "-Inf", "1e+20"]
    assert format_value(math.nan) == "NaN"
