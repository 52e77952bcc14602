"""Zero series for known label sets: there from the first scrape, never doubling a recorded one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.ai.errors import AIRateLimited, AIUnavailable, AIUpstreamError
from api.ai.service import CANCELLED, SUCCESS, status_label
from engine.state import FINISHED_STATES, ErrorType
from monitoring import metrics
from monitoring.baseline import (
    AI_STATUSES,
    APPROVAL_OUTCOMES,
    EXECUTION_ERROR_TYPES,
    FINAL_EXECUTION_STATUSES,
    NOTIFICATION_CHANNELS,
    NOTIFICATION_STATUSES,
    KnownLabels,
    KnownSeries,
    KnownWorkflow,
    known_label_sets,
)
from monitoring.exposition import render_metrics
from tasks import notifier

Scenario = Callable[[str], Any]

INVOICE = KnownWorkflow("invoice", "event", "invoice.created", asks_approval=True)
NIGHTLY = KnownWorkflow("nightly", "schedule")


def test_the_label_values_are_those_the_recorders_use() -> None:
    assert set(FINAL_EXECUTION_STATUSES) == {str(s) for s in FINISHED_STATES}
    assert set(EXECUTION_ERROR_TYPES) == {str(e) for e in ErrorType}
    assert {notifier.SENT, notifier.FAILED, notifier.SKIPPED} == set(NOTIFICATION_STATUSES)
    errors = (AIRateLimited("x"), AIUpstreamError("x"), AIUnavailable("x"))
    assert {status_label(e) for e in errors} | {SUCCESS, CANCELLED} == set(AI_STATUSES)
    assert set(APPROVAL_OUTCOMES) == {"requested", "approved", "rejected", "expired"}


def test_each_enabled_workflow_gets_its_executions_by_status_and_trigger() -> None:
    sets = known_label_sets(KnownLabels(workflows=[INVOICE, NIGHTLY]))
    executions = sets["workflow_executions_total"]
    assert {(s["workflow_id"], s["trigger_type"]) for s in executions} == {
        ("invoice", "event"),
        ("invoice", "manual"),
        ("nightly", "schedule"),
        ("nightly", "manual"),
    }
    assert len(executions) == 4 * len(FINAL_EXECUTION_STATUSES)
    assert {s["workflow_id"] for s in sets["workflow_execution_duration_seconds"]} == {
        "invoice",
        "nightly",
    }
    assert sets["events_received_total"] == [{"event_type": "invoice.created"}]
    # Only a workflow that asks for approvals gets approval series.
    assert {s["workflow_id"] for s in sets["approvals_total"]} == {"invoice"}
    assert len(sets["approvals_total"]) == len(APPROVAL_OUTCOMES)
    assert len(sets["notifications_sent_total"]) == len(NOTIFICATION_CHANNELS) * len(
        NOTIFICATION_STATUSES
    )


def test_only_steps_with_a_retry_policy_get_retry_series() -> None:
    retrying = KnownWorkflow("flaky", "event", retried_steps=("call", "push"))
    sets = known_label_sets(KnownLabels(workflows=[retrying, NIGHTLY]))
    assert sets["workflow_step_retries_total"] == [
        {"workflow_id": "flaky", "step_name": "call"},
        {"workflow_id": "flaky", "step_name": "push"},
    ]


def test_a_manual_workflow_is_not_listed_twice() -> None:
    sets = known_label_sets(KnownLabels(workflows=[KnownWorkflow("by_hand", "manual")]))
    assert len(sets["workflow_executions_total"]) == len(FINAL_EXECUTION_STATUSES)


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_known_series_read_zero_before_any_event(single_process: None) -> None:
    known = KnownSeries(lambda: KnownLabels(workflows=[NIGHTLY], ai_models=["claude-x"]))
    found = samples(render_metrics(known=known)[0])
    key = (("status", "failed"), ("trigger_type", "schedule"), ("workflow_id", "nightly"))
    assert found[("workflow_executions_total", key)] == 0
    assert found[("ai_requests_total", (("model", "claude-x"), ("status", "unavailable")))] == 0
    duration = (("workflow_id", "nightly"),)
    assert found[("workflow_execution_duration_seconds_count", duration)] == 0
    buckets = [k for k in found if k[0] == "workflow_execution_duration_seconds_bucket"]
    nightly = [k for k in buckets if ("workflow_id", "nightly") in k[1]]
    assert len(nightly) == len(metrics.EXECUTION_BUCKETS) + 1  # and +Inf


def test_a_target_fills_only_the_families_it_records(single_process: None) -> None:
    labels = KnownLabels(workflows=[NIGHTLY], ai_models=["model-of-the-worker-test"])
    known = KnownSeries(lambda: labels, ["workflow_executions_total"])
    found = samples(render_metrics(known=known)[0])
    key = (("status", "failed"), ("trigger_type", "schedule"), ("workflow_id", "nightly"))
    assert ("workflow_executions_total", key) in found
    assert not any("model-of-the-worker-test" in str(labels) for _, labels in found)


def test_a_failing_fetch_leaves_the_recorded_series(
    single_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> KnownLabels:
        raise RuntimeError("database down")

    with caplog.at_level(logging.ERROR):
        body, _ = render_metrics(known=KnownSeries(broken))
    assert b"http_requests_in_flight" in body
    assert "zero series omitted" in caplog.text


def test_a_recorded_series_is_neither_doubled_nor_reset(run_scenario: Scenario) -> None:
    found = run_scenario("known")

    def value(name: str, **labels: str) -> float | None:
        result: float | None = found.get(repr((name, tuple(sorted(labels.items())))))
        return result

    recorded = {"workflow_id": "invoice", "status": "completed", "trigger_type": "event"}
    assert value("workflow_executions_total", **recorded) == 1
    assert value("workflow_execution_duration_seconds_count", workflow_id="invoice") == 1
    assert value("workflow_execution_duration_seconds_sum", workflow_id="invoice") == 2.0
    assert value("workflow_executions_total", **{**recorded, "status": "failed"}) == 0
    assert value("workflow_executions_total", **{**recorded, "workflow_id": "welcome"}) is None
    welcome = {"workflow_id": "welcome", "status": "failed", "trigger_type": "schedule"}
    assert value("workflow_executions_total", **welcome) == 0
    counts = [k for k in found if k.startswith("('workflow_execution_duration_seconds_count'")]
    assert len(counts) == 2
