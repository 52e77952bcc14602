"""Every analytics number equals the same number computed in Python from the inserted rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.integration.analytics.dataset import (
    Dataset,
    Expected,
    bucket_series,
    failed_at,
    percentile_cont,
    seed,
)
from tests.support import API, Caller, register

pytestmark = pytest.mark.integration

RANGES = ("1h", "24h", "7d", "30d")
SCOPES = (None, "alpha", "delta")


def approx(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, abs=0.006)


@pytest.fixture(scope="module")
def seeded(app: Any) -> tuple[Caller, Dataset]:
    owner = register(app.test_client())
    return owner, seed(app, owner.organization_id)


def fetch(caller: Caller, endpoint: str, **params: Any) -> dict[str, Any]:
    query = "&".join(f"{key}={value}" for key, value in params.items() if value is not None)
    response = caller.get(f"{API}/analytics/{endpoint}?{query}")
    assert response.status_code == 200, response.json
    return dict(response.json)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_dataset_covers_every_window_and_status(seeded: tuple[Caller, Dataset]) -> None:
    _, data = seeded
    assert {e.status for e in data.executions} >= {"completed", "failed", "cancelled", "waiting"}
    body = fetch(seeded[0], "stats", time_range="1h")
    expected = Expected.for_response(data, body)
    assert 0 < len(expected.executions) < len(data.executions)
    assert data.pending_approvals
    assert any(step.attempt > 1 for step in data.steps)


@pytest.mark.parametrize("workflow_id", SCOPES)
@pytest.mark.parametrize("time_range", RANGES)
def test_stats_match_the_rows(
    seeded: tuple[Caller, Dataset], time_range: str, workflow_id: str | None
) -> None:
    caller, data = seeded
    body = fetch(caller, "stats", time_range=time_range, workflow_id=workflow_id)
    expected = Expected.for_response(data, body)
    durations = expected.durations()
    assert body["time_range"] == time_range
    assert body["total"] == len(expected.executions)
    assert body["by_status"] == expected.by_status()
    assert body["by_result"] == expected.by_result()
    assert body["error_types"] == expected.error_types()
    assert (body["completed"], body["failed"], body["cancelled"]) == (
        expected.by_status()["completed"],
        expected.by_status()["failed"],
        expected.by_status()["cancelled"],
    )
    assert body["success_rate"] == approx(expected.success_rate())
    assert body["avg_duration_ms"] == approx(sum(durations) / len(durations) if durations else None)
    assert body["min_duration_ms"] == approx(min(durations, default=None))
    assert body["max_duration_ms"] == approx(max(durations, default=None))
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert body[f"{name}_duration_ms"] == approx(percentile_cont(durations, fraction)), name


@pytest.mark.parametrize("workflow_id", SCOPES)
@pytest.mark.parametrize("time_range", RANGES)
def test_dashboard_matches_the_rows(
    seeded: tuple[Caller, Dataset], time_range: str, workflow_id: str | None
) -> None:
    caller, data = seeded
    body = fetch(caller, "dashboard", time_range=time_range, workflow_id=workflow_id)
    expected = Expected.for_response(data, body)
    assert body["executions"] == {
        "total": len(expected.executions),
        "by_status": expected.by_status(),
        "by_result": expected.by_result(),
    }
    assert body["success_rate"] == approx(expected.success_rate())
    durations = expected.durations()
    assert body["avg_duration_ms"] == approx(sum(durations) / len(durations) if durations else None)
    assert body["p95_duration_ms"] == approx(percentile_cont(durations, 0.95))
    assert {key: body[key] for key in ("active", "waiting", "pending_approvals")} == expected.live()
    assert body["events_received"] == expected.events_received()
    top = expected.workflows()[:5]
    assert [row["workflow_id"] for row in body["top_workflows"]] == [
        row["workflow_id"] for row in top
    ]
    for got, want in zip(body["top_workflows"], top, strict=True):
        assert (got["total"], got["completed"], got["failed"], got["cancelled"]) == (
            want["total"],
            want["completed"],
            want["failed"],
            want["cancelled"],
        )


@pytest.mark.parametrize(
    ("time_range", "interval"),
    [
        ("1h", "minute"),
        ("1h", "hour"),
        ("24h", "hour"),
        ("24h", "day"),
        ("7d", "hour"),
        ("7d", "day"),
        ("30d", "day"),
    ],
)
def test_trend_buckets_match_the_rows_and_fill_gaps_with_zeros(
    seeded: tuple[Caller, Dataset], time_range: str, interval: str
) -> None:
    caller, data = seeded
    body = fetch(caller, "trends", time_range=time_range, interval=interval)
    expected = Expected.for_response(data, body)
    assert body["interval"] == interval
    series = bucket_series(expected.start, expected.end, interval)
    assert [moment(row["bucket"]) for row in body["buckets"]] == series
    want = expected.trend(interval)
    assert set(want) <= set(series)
    empty = {"total": 0, "completed": 0, "failed": 0, "cancelled": 0, "in_progress": 0}
    for row in body["buckets"]:
        bucket = want.get(moment(row["bucket"]), {**empty, "avg_duration_ms": None})
        assert {key: row[key] for key in empty} == {key: bucket[key] for key in empty}, row
        assert row["avg_duration_ms"] == approx(bucket["avg_duration_ms"])
    assert sum(row["total"] for row in body["buckets"]) == len(expected.executions)
    if len(series) > len(expected.executions):  # then some bucket must be an empty one
        assert any(row["total"] == 0 for row in body["buckets"])


@pytest.mark.parametrize("time_range", ["1h", "30d"])
def test_trends_default_the_interval_to_the_range(
    seeded: tuple[Caller, Dataset], time_range: str
) -> None:
    body = fetch(seeded[0], "trends", time_range=time_range)
    assert body["interval"] == {"1h": "minute", "30d": "day"}[time_range]
    assert len(body["buckets"]) == {"1h": 61, "30d": 31}[time_range]


@pytest.mark.parametrize("workflow_id", SCOPES)
@pytest.mark.parametrize("time_range", RANGES)
def test_workflow_stats_match_the_rows(
    seeded: tuple[Caller, Dataset], time_range: str, workflow_id: str | None
) -> None:
    caller, data = seeded
    body = fetch(caller, "workflows", time_range=time_range, workflow_id=workflow_id)
    expected = Expected.for_response(data, body)
    want = expected.workflows()
    assert body["total"] == len(want)
    assert len(body["workflows"]) == len(want)
    for got, row in zip(body["workflows"], want, strict=True):
        assert got["workflow_id"] == row["workflow_id"]
        assert (got["total"], got["completed"], got["failed"], got["cancelled"]) == (
            row["total"],
            row["completed"],
            row["failed"],
            row["cancelled"],
        )
        assert got["success_rate"] == approx(row["success_rate"])
        assert got["avg_duration_ms"] == approx(row["avg_duration_ms"])
        assert moment(got["last_run_at"]) == row["last_run_at"]


def test_workflow_stats_are_paginated(seeded: tuple[Caller, Dataset]) -> None:
    caller, data = seeded
    first = fetch(caller, "workflows", time_range="30d", page=1, page_size=2)
    second = fetch(caller, "workflows", time_range="30d", page=2, page_size=2)
    want = [row["workflow_id"] for row in Expected.for_response(data, first).workflows()]
    assert first["total"] == len(want) == 4
    assert [row["workflow_id"] for row in first["workflows"] + second["workflows"]] == want
    assert (second["page"], second["page_size"]) == (2, 2)


@pytest.mark.parametrize("workflow_id", SCOPES)
@pytest.mark.parametrize("time_range", RANGES)
def test_error_report_matches_the_rows(
    seeded: tuple[Caller, Dataset], time_range: str, workflow_id: str | None
) -> None:
    caller, data = seeded
    body = fetch(caller, "errors", time_range=time_range, workflow_id=workflow_id, limit=100)
    expected = Expected.for_response(data, body)
    failures = expected.failures()
    assert body["total_failed"] == len(failures)
    got = sorted(
        (g["error_type"], g["error_message"], g["count"], moment(g["last_seen"]), g["workflow_ids"])
        for g in body["groups"]
    )
    want = sorted(
        (g["error_type"], g["error_message"], g["count"], g["last_seen"], g["workflow_ids"])
        for g in expected.error_groups()
    )
    assert got == want
    counts = [group["count"] for group in body["groups"]]
    assert counts == sorted(counts, reverse=True)
    recent = sorted(failures, key=lambda e: (-failed_at(e).timestamp(), e.id.hex))
    assert [row["execution_id"] for row in body["recent"]] == [str(e.id) for e in recent][:100]
    for row, execution in zip(body["recent"], recent, strict=False):
        assert moment(row["failed_at"]) == failed_at(execution)
        assert (row["workflow_id"], row["error_type"], row["error_message"]) == (
            execution.workflow_id,
            execution.error_type,
            execution.error_message,
        )


def test_error_report_limits_both_lists(seeded: tuple[Caller, Dataset]) -> None:
    caller, data = seeded
    body = fetch(caller, "errors", time_range="30d", limit=2)
    expected = Expected.for_response(data, body)
    assert len(body["recent"]) == 2
    assert len(body["groups"]) == 2
    top_counts = sorted((g["count"] for g in expected.error_groups()), reverse=True)[:2]
    assert [group["count"] for group in body["groups"]] == top_counts


@pytest.mark.parametrize("workflow_id", SCOPES)
@pytest.mark.parametrize("time_range", RANGES)
def test_step_stats_match_the_rows(
    seeded: tuple[Caller, Dataset], time_range: str, workflow_id: str | None
) -> None:
    caller, data = seeded
    body = fetch(caller, "steps", time_range=time_range, workflow_id=workflow_id, page_size=100)
    expected = Expected.for_response(data, body)
    want = expected.steps()
    assert body["total"] == len(want)
    keys = ("workflow_id", "step_id", "step_type", "runs", "completed", "failures", "skipped")
    # Ties on `runs` are ordered by the key, so the whole list order is determined.
    assert [tuple(got[k] for k in (*keys, "retries")) for got in body["steps"]] == [
        tuple(row[k] for k in (*keys, "retries")) for row in want
    ]
    for got, row in zip(body["steps"], want, strict=True):
        assert got["avg_duration_ms"] == approx(row["avg_duration_ms"])
        assert got["p95_duration_ms"] == approx(row["p95_duration_ms"])


def test_another_organization_sees_zeros(client: Any, seeded: tuple[Caller, Dataset]) -> None:
    stranger = register(client)
    stats = fetch(stranger, "stats", time_range="30d")
    assert stats["total"] == 0
    assert set(stats["by_status"].values()) == {0}
    assert stats["success_rate"] is None
    assert stats["p95_duration_ms"] is None
    dashboard = fetch(stranger, "dashboard", time_range="30d")
    assert dashboard["executions"]["total"] == 0
    assert (dashboard["active"], dashboard["waiting"], dashboard["pending_approvals"]) == (0, 0, 0)
    assert dashboard["events_received"] == 0
    assert dashboard["top_workflows"] == []
    trends = fetch(stranger, "trends", time_range="7d", interval="day")
    assert {row["total"] for row in trends["buckets"]} == {0}
    assert fetch(stranger, "workflows", time_range="30d")["workflows"] == []
    errors = fetch(stranger, "errors", time_range="30d")
    assert (errors["total_failed"], errors["groups"], errors["recent"]) == (0, [], [])
    assert fetch(stranger, "steps", time_range="30d")["steps"] == []
    # The same slugs exist in the seeded organization; the stranger still sees nothing.
    assert fetch(stranger, "stats", time_range="30d", workflow_id="alpha")["total"] == 0
