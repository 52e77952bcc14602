"""Our merge of the directory and our text format equal upstream's, byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from monitoring.textformat import render_text

Scenario = Callable[[str], Any]


def test_the_directory_merges_as_upstream_does(run_scenario: Scenario) -> None:
    result = run_scenario("aggregation")
    assert result["lines"] > 100
    assert result["identical"], result["ours"][:2000]


def test_a_serving_process_merges_as_upstream_does_as_the_directory_changes(
    run_scenario: Scenario,
) -> None:
    rounds = run_scenario("aggregation_rounds")["rounds"]
    assert [r["what"] for r in rounds if not r["identical"]] == [], rounds[0]["diff"][:3000]
    assert all(r["text_identical"] for r in rounds)
    assert all(r["lines"] > 100 for r in rounds)
    # The cached plan serves the scrapes whose files kept their keys, and only those.
    assert [r["plan_reused"] for r in rounds] == [False, True, True, False, False, False, False]


def test_the_text_format_is_generate_latests(run_scenario: Scenario) -> None:
    registry = CollectorRegistry()
    counter = Counter("odd_total", "Help with \\ and\nnewline.", ["k", "le_x"], registry=registry)
    counter.labels('quote " back \\ slash', "new\nline").inc(3)
    counter.labels("", "plain").inc()
    histogram = Histogram("latency_seconds", "Latency.", ["path"], registry=registry)
    histogram.labels("/a").observe(0.3)
    gauge = Gauge("temperature_celsius", "Temperature.", registry=registry)
    gauge.set(-1.5)
    # The registry's counters and histograms carry _created samples: passed through.
    families: list[Metric] = list(registry.collect())
    assert render_text(families) == generate_latest(registry)
    assert run_scenario("aggregation")["text_identical"]


def test_cached_value_texts_keep_signed_zero_nan_and_infinities_apart() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("reading", "Reading.", ["k"], registry=registry)
    for index, value in enumerate((0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e22)):
        gauge.labels(str(index)).set(value)
    gauge.labels("again").set(3.0)
    gauge.labels("same").set(3.0)
    expected = generate_latest(registry)
    # Twice: the second render reads every value text from the cache the first one filled.
    assert render_text(list(registry.collect())) == expected
    assert render_text(list(registry.collect())) == expected
    assert b'reading{k="1"} -0.0\n' in expected
    assert b'reading{k="2"} NaN\n' in expected
