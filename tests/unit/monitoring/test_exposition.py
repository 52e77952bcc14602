"""Rendering /metrics: stored-state gauges, a failing callback, single-process mode."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics
from monitoring.exposition import CONTENT_TYPE, StateCollector, StateSnapshot, render_metrics


def values(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_the_state_collector_turns_a_snapshot_into_gauges(single_process: None) -> None:
    snapshot = StateSnapshot(
        approvals_pending=7,
        executions_active={"invoice": 3, "welcome": 0},
        executions_waiting={"invoice": 2},
        executions_overdue=1,
        executions_stuck=4,
        outbox_pending=5,
        outbox_oldest_pending_age_seconds=12.5,
        queue_lengths={"celery": 9, "steps": 0},
    )
    body, content_type = render_metrics([StateCollector(lambda: snapshot)])
    found = values(body)
    assert content_type == CONTENT_TYPE
    assert found[("approvals_pending", ())] == 7
    assert found[("active_workflow_executions", (("workflow_id", "invoice"),))] == 3
    assert found[("active_workflow_executions", (("workflow_id", "welcome"),))] == 0
    assert found[("workflow_executions_waiting", (("workflow_id", "invoice"),))] == 2
    assert found[("workflow_executions_overdue", ())] == 1
    assert found[("workflow_executions_stuck", ())] == 4
    assert found[("workflow_outbox_pending", ())] == 5
    assert found[("workflow_outbox_oldest_pending_age_seconds", ())] == 12.5
    assert found[("celery_queue_length", (("queue_name", "steps"),))] == 0
    assert found[("monitoring_state_collector_up", ())] == 1


def test_a_failing_state_callback_does_not_break_the_scrape(
    single_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> StateSnapshot:
        raise ConnectionError("postgres is down")

    errors_before = metrics.STATE_COLLECTOR_ERRORS._value.get()
    with caplog.at_level(logging.ERROR, logger="monitoring.exposition"):
        body, _ = render_metrics([StateCollector(broken)])
    found = values(body)
    assert found[("monitoring_state_collector_up", ())] == 0
    assert ("approvals_pending", ()) not in found
    assert ("http_requests_in_flight", ()) in found  # the rest of the scrape is intact
    assert metrics.STATE_COLLECTOR_ERRORS._value.get() == errors_before + 1
    assert "postgres is down" in caplog.text


def test_single_process_mode_exports_this_process(single_process: None) -> None:
    body, _ = render_metrics()
    found = values(body)
    assert found[("process_cpu_seconds_total", ())] > 0
    assert found[("process_resident_memory_bytes", ())] > 0


def test_render_metrics_is_importable_from_the_metrics_module() -> None:
    from monitoring.metrics import StateCollector as Reexported
    from monitoring.metrics import render_metrics as reexported

    assert reexported is render_metrics
    assert Reexported is StateCollector
    with pytest.raises(AttributeError):
        _ = metrics.no_such_metric


def test_monitoring_imports_no_framework_and_no_other_layer() -> None:
    import subprocess
    import sys

    code = (
        "import sys, monitoring.metrics, monitoring.exposition, monitoring.multiprocess;"
        "print(' '.join(sorted(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    forbidden = {"flask", "celery", "kombu", "sqlalchemy", "redis", "yaml"}
    forbidden |= {"api", "engine", "models", "tasks", "workers"}
    assert not loaded & forbidden


def test_the_metrics_server_serves_a_scrape(single_process: None) -> None:
    import urllib.error
    import urllib.request

    from monitoring.exposition import start_metrics_server

    server = start_metrics_server(0, addr="127.0.0.1")
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.headers["Content-Type"] == CONTENT_TYPE
            assert b"http_requests_in_flight" in response.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert refused.value.code == 404
        refused.value.close()
    finally:
        server.shutdown()
        server.server_close()
