"""The metric catalogue matches SPEC §6 and every metric reaches a scrape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics
from monitoring.exposition import StateCollector, StateSnapshot, render_metrics

# SPEC §6, as written there (types the spec leaves open are ours: sizes are histograms).
SPEC: dict[str, tuple[str, tuple[str, ...]]] = {
    # HTTP
    "http_requests_total": ("counter", ("method", "path", "status")),
    "http_request_duration_seconds": ("histogram", ("method", "path")),
    "http_request_size_bytes": ("histogram", ("method", "path")),
    "http_response_size_bytes": ("histogram", ("method", "path", "status")),
    "http_requests_in_flight": ("gauge", ()),
    # workflows
    "workflow_executions_total": ("counter", ("workflow_id", "status", "trigger_type")),
    "workflow_execution_duration_seconds": ("histogram", ("workflow_id",)),
    "workflow_step_duration_seconds": ("histogram", ("workflow_id", "step_name", "status")),
    "workflow_execution_errors_total": ("counter", ("workflow_id", "error_type")),
    "active_workflow_executions": ("gauge", ("workflow_id",)),
    "events_received_total": ("counter", ("event_type",)),
    "workflow_step_retries_total": ("counter", ("workflow_id", "step_name")),
    "workflow_dispatch_latency_seconds": ("histogram", ()),
    # database
    "db_connections_active": ("gauge", ()),
    "db_pool_size": ("gauge", ()),
    "db_connections_failed_total": ("counter", ("database",)),
    "db_query_duration_seconds": ("histogram", ("query_type", "table")),
    "db_query_errors_total": ("counter", ("query_type", "error_type")),
    # redis
    "redis_connections_active": ("gauge", ()),
    "redis_connections_failed_total": ("counter", ()),
    "redis_operations_duration_seconds": ("histogram", ("operation",)),
    "redis_operations_errors_total": ("counter", ("operation",)),
    # business
    "approvals_total": ("counter", ("status", "workflow_id")),
    "approvals_duration_seconds": ("histogram", ("workflow_id",)),
    "approvals_pending": ("gauge", ()),
    "notifications_sent_total": ("counter", ("type", "status")),
    "ai_requests_total": ("counter", ("model", "status")),
    "ai_request_duration_seconds": ("histogram", ("model",)),
    # workers
    "worker_jobs_processed_total": ("counter", ("worker_type", "status")),
    "worker_job_duration_seconds": ("histogram", ("worker_type",)),
    "worker_errors_total": ("counter", ("worker_type",)),
    # auth
    "auth_requests_total": ("counter", ("method", "status")),
    "auth_failures_total": ("counter", ("reason",)),
    "auth_token_validations_total": ("counter", ("valid",)),
    "rate_limited_requests_total": ("counter", ("scope",)),
    # celery (danihodovic/celery-exporter)
    **{
        f"celery_task_{event}_total": ("counter", ("name", "hostname", "queue_name"))
        for event in ("sent", "received", "started", "succeeded", "retried", "rejected", "revoked")
    },
    "celery_task_failed_total": ("counter", ("name", "hostname", "queue_name", "exception")),
    "celery_task_runtime": ("histogram", ("name", "hostname", "queue_name")),
    "celery_queue_length": ("gauge", ("queue_name",)),
    "celery_worker_up": ("gauge", ("hostname",)),
    "celery_worker_tasks_active": ("gauge", ("hostname",)),
    "celery_active_worker_count": ("gauge", ("queue_name",)),
    # process
    "process_resident_memory_bytes": ("gauge", ()),
    "process_cpu_seconds_total": ("counter", ()),
    "process_open_fds": ("gauge", ()),
}

# Added beyond the spec, documented in monitoring/metrics.py.
ADDED = {
    "workflow_executions_waiting",
    "workflow_executions_overdue",
    "workflow_executions_stuck",
    "workflow_outbox_pending",
    "workflow_outbox_oldest_pending_age_seconds",
    "worker_job_items_total",
    "worker_last_run_timestamp_seconds",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "monitoring_state_collector_errors_total",
    "monitoring_state_collector_up",
}


@pytest.mark.parametrize("name", sorted(SPEC))
def test_every_spec_metric_is_catalogued_with_its_type_and_labels(name: str) -> None:
    kind, labels = SPEC[name]
    spec = metrics.CATALOGUE[name]
    assert (spec.kind, spec.labels) == (kind, labels)


def test_the_catalogue_holds_the_spec_and_the_documented_additions_only() -> None:
    assert set(metrics.CATALOGUE) == set(SPEC) | ADDED


def test_names_follow_the_base_unit_conventions() -> None:
    for spec in metrics.CATALOGUE.values():
        assert (spec.kind == "counter") == spec.name.endswith("_total"), spec.name
        if spec.kind == "histogram" and spec.name != "celery_task_runtime":  # exporter's name
            assert spec.name.endswith(("_seconds", "_bytes")), spec.name


def test_gauges_recorded_in_processes_have_a_multiprocess_mode() -> None:
    for spec in metrics.CATALOGUE.values():
        if spec.kind == "gauge" and spec.source == "process":
            assert spec.multiprocess_mode in {"livesum", "livemax", "max"}, spec.name
            assert spec.metric is not None


def test_no_label_is_an_unbounded_identifier() -> None:
    forbidden = {"execution_id", "user_id", "event_id", "request_id", "url", "pid"}
    for spec in metrics.CATALOGUE.values():
        assert not forbidden & set(spec.labels), spec.name


def exercise_every_process_metric() -> None:
    for spec in metrics.CATALOGUE.values():
        metric: Any = spec.metric
        if metric is None:
            continue
        child = metric.labels(*["x"] * len(spec.labels)) if spec.labels else metric
        if spec.kind == "counter":
            child.inc()
        elif spec.kind == "histogram":
            child.observe(1.0)
        else:
            child.set(1)


def scraped_families(body: bytes) -> dict[str, tuple[str, set[str]]]:
    families = {}
    for family in text_string_to_metric_families(body.decode()):
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = (family.type, labels)
    return families


def full_snapshot() -> StateSnapshot:
    return StateSnapshot(
        approvals_pending=1,
        executions_active={"x": 1},
        executions_waiting={"x": 1},
        queue_lengths={"x": 1},
    )


def test_every_metric_appears_in_a_single_process_scrape_with_its_labels(
    single_process: None,
) -> None:
    exercise_every_process_metric()
    body, _ = render_metrics([StateCollector(full_snapshot)])
    families = scraped_families(body)
    for spec in metrics.CATALOGUE.values():
        assert spec.name in families, spec.name
        kind, labels = families[spec.name]
        assert (kind, labels) == (spec.kind, set(spec.labels)), spec.name


def test_every_metric_appears_in_a_multiprocess_scrape_with_its_labels(
    run_scenario: Callable[[str], Any],
) -> None:
    families = run_scenario("catalogue")
    for spec in metrics.CATALOGUE.values():
        assert spec.name in families, spec.name
        assert families[spec.name] == {"type": spec.kind, "labels": sorted(spec.labels)}


def sample_value(body: bytes, name: str, /, **labels: str) -> float | None:
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_worker_job_preinitialisation_creates_zero_series_but_no_last_run(
    single_process: None,
) -> None:
    metrics.preinitialise_worker_job_metrics(["stuck_sweeper"])
    body, _ = render_metrics()
    for status in ("success", "error"):
        assert (
            sample_value(
                body, "worker_jobs_processed_total", worker_type="stuck_sweeper", status=status
            )
            == 0
        )
    assert sample_value(body, "worker_errors_total", worker_type="stuck_sweeper") == 0
    assert sample_value(body, "worker_job_duration_seconds_count", worker_type="stuck_sweeper") == 0
    assert (
        sample_value(body, "worker_last_run_timestamp_seconds", worker_type="stuck_sweeper") is None
    )


def test_celery_preinitialisation_creates_every_event_counter_at_zero(single_process: None) -> None:
    metrics.preinitialise_celery_task_counters(
        ["workflows.preinit_probe"], "celery@h", "steps", exceptions=["StepError"]
    )
    body, _ = render_metrics()
    task = {"name": "workflows.preinit_probe", "hostname": "celery@h", "queue_name": "steps"}
    for event in metrics.CELERY_TASK_EVENTS:
        assert sample_value(body, f"celery_task_{event}_total", **task) == 0, event
    assert sample_value(body, "celery_task_failed_total", exception="StepError", **task) == 0
    assert sample_value(body, "celery_task_runtime_count", **task) == 0


def test_job_runs_update_outcome_errors_items_and_last_run(single_process: None) -> None:
    # The registry is the process's: other tests in this run may have counted this
    # job type already, so the counters are compared with their values before.
    job = {"worker_type": "approval_expiration"}
    counters = (
        ("worker_jobs_processed_total", {"status": "error", **job}),
        ("worker_errors_total", job),
        ("worker_job_items_total", job),
    )
    before_body, _ = render_metrics()
    before = [sample_value(before_body, name, **labels) or 0 for name, labels in counters]

    metrics.record_job_run("approval_expiration", "error", 0.2, items=4, finished_at=1234.0)

    body, _ = render_metrics()
    after = [sample_value(body, name, **labels) or 0 for name, labels in counters]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 4]
    assert sample_value(body, "worker_last_run_timestamp_seconds", **job) == 1234.0


def test_an_execution_that_failed_counts_its_error_type(single_process: None) -> None:
    metrics.record_execution_finished("invoice-probe", "failed", "event", 3.0, "timeout")
    body, _ = render_metrics()
    assert (
        sample_value(
            body,
            "workflow_executions_total",
            workflow_id="invoice-probe",
            status="failed",
            trigger_type="event",
        )
        == 1
    )
    assert (
        sample_value(
            body,
            "workflow_execution_errors_total",
            workflow_id="invoice-probe",
            error_type="timeout",
        )
        == 1
    )


def test_in_flight_requests_are_counted_while_handled() -> None:
    before = metrics.HTTP_IN_FLIGHT._value.get()
    with metrics.track_in_flight():
        assert metrics.HTTP_IN_FLIGHT._value.get() == before + 1
    assert metrics.HTTP_IN_FLIGHT._value.get() == before


def test_a_user_supplied_event_type_is_capped() -> None:
    cap = metrics._LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a")] == ["a", "b", metrics.OTHER, "a"]
