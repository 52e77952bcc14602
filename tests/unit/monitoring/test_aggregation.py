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
