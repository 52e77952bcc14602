"""Analytics queries: Postgres does the counting, every input is a bound parameter.

Executions belong to a window by `created_at`; step runs by their own
`created_at`. Durations are `duration_ms` of the rows that recorded one;
averages and percentiles (`percentile_cont`, linear interpolation) ignore the
others. Success rate is completed / (completed + failed): a cancellation is
someone's decision, not a failure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Interval, Select, desc, distinct, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from api.analytics.window import UNITS, Window
from engine.state import (
    ACTIVE_STATES,
    ApprovalStatus,
    ErrorType,
    ExecutionResult,
    ExecutionStatus,
    StepRunStatus,
)
from models.execution import Approval, Event, Execution, StepRun

COMPLETED = ExecutionStatus.COMPLETED.value
FAILED = ExecutionStatus.FAILED.value
CANCELLED = ExecutionStatus.CANCELLED.value
IN_PROGRESS = sorted(state.value for state in ACTIVE_STATES)
RUNNING_NOW = (ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value)
TOP_WORKFLOWS = 5

# GROUPING(status, result, error_type): the bit of a column is 1 when the row
# does not group by it, so each single-column grouping set has its own mask.
_BY_STATUS, _BY_RESULT, _BY_ERROR_TYPE = 0b011, 0b101, 0b110


def execution_summary(session: Session, window: Window) -> dict[str, Any]:
    """Totals, breakdowns and duration statistics of the window's executions."""
    duration = Execution.duration_ms
    row = session.execute(
        select(
            func.avg(duration).label("avg"),
            func.min(duration).label("min"),
            func.max(duration).label("max"),
            func.percentile_cont(0.5).within_group(duration).label("p50"),
            func.percentile_cont(0.95).within_group(duration).label("p95"),
            func.percentile_cont(0.99).within_group(duration).label("p99"),
        ).where(*_executions_in(window))
    ).one()
    by_status, by_result, error_types = _breakdowns(session, window)
    completed, failed = by_status[COMPLETED], by_status[FAILED]
    return {
        "total": sum(by_status.values()),
        "completed": completed,
        "failed": failed,
        "cancelled": by_status[CANCELLED],
        "by_status": by_status,
        "by_result": by_result,
        "error_types": error_types,
        "success_rate": success_rate(completed, failed),
        "avg_duration_ms": _ms(row.avg),
        "min_duration_ms": _ms(row.min),
        "max_duration_ms": _ms(row.max),
        "p50_duration_ms": _ms(row.p50),
        "p95_duration_ms": _ms(row.p95),
        "p99_duration_ms": _ms(row.p99),
    }


def live_counts(session: Session, window: Window) -> dict[str, int]:
    """What is in flight now, whenever it started: active, waiting, pending approvals."""
    status = Execution.status
    executions = [
        Execution.organization_id == window.organization_id,
        status.in_([*RUNNING_NOW, ExecutionStatus.WAITING.value]),
    ]
    approvals = [
        Approval.organization_id == window.organization_id,
        Approval.status == ApprovalStatus.PENDING.value,
    ]
    if window.workflow_id is not None:
        executions.append(Execution.workflow_id == window.workflow_id)
        approvals.append(Approval.workflow_id == window.workflow_id)
    row = session.execute(
        select(
            func.count().filter(status.in_(RUNNING_NOW)).label("active"),
            func.count().filter(status == ExecutionStatus.WAITING.value).label("waiting"),
        ).where(*executions)
    ).one()
    pending = session.scalar(select(func.count()).select_from(Approval).where(*approvals))
    return {"active": row.active, "waiting": row.waiting, "pending_approvals": pending or 0}


def events_received(session: Session, window: Window) -> int:
    """Events of the window; with a workflow_id, the events that triggered it."""
    conditions = [
        Event.organization_id == window.organization_id,
        Event.received_at >= window.start,
        Event.received_at <= window.end,
    ]
    if window.workflow_id is not None:
        conditions.append(Event.triggered_workflows.contains([window.workflow_id]))
    return session.scalar(select(func.count()).select_from(Event).where(*conditions)) or 0


def trends(session: Session, window: Window) -> list[dict[str, Any]]:
    """One row per bucket of the window, oldest first; empty buckets count zero.

    Buckets are computed on UTC wall-clock time (`timezone('UTC', ...)`), so a
    day bucket is a UTC day whatever the session's TimeZone, and the series
    steps by a plain interval without DST shifts.
    """
    unit = window.interval
    utc_created = func.timezone("UTC", Execution.created_at)
    rows = (
        select(
            func.date_trunc(unit, utc_created).label("bucket"),
            Execution.status.label("status"),
            Execution.duration_ms.label("duration_ms"),
        )
        .where(*_executions_in(window))
        .subquery("rows")
    )
    per_bucket = (
        select(
            rows.c.bucket,
            func.count().label("total"),
            func.count().filter(rows.c.status == COMPLETED).label("completed"),
            func.count().filter(rows.c.status == FAILED).label("failed"),
            func.count().filter(rows.c.status == CANCELLED).label("cancelled"),
            func.count().filter(rows.c.status.in_(IN_PROGRESS)).label("in_progress"),
            func.avg(rows.c.duration_ms).label("avg_duration_ms"),
        )
        .group_by(rows.c.bucket)
        .subquery("per_bucket")
    )
    series = (
        func.generate_series(
            func.date_trunc(unit, func.timezone("UTC", _instant(window.start))),
            func.date_trunc(unit, func.timezone("UTC", _instant(window.end))),
            literal(UNITS[unit], Interval()),
        )
        .table_valued("bucket")
        .render_derived(name="series")
    )
    statement = (
        select(
            series.c.bucket,
            *(
                func.coalesce(per_bucket.c[name], 0).label(name)
                for name in ("total", "completed", "failed", "cancelled", "in_progress")
            ),
            per_bucket.c.avg_duration_ms,
        )
        .select_from(series.outerjoin(per_bucket, per_bucket.c.bucket == series.c.bucket))
        .order_by(series.c.bucket)
    )
    return [
        {
            **row._asdict(),
            "bucket": row.bucket.replace(tzinfo=UTC),
            "avg_duration_ms": _ms(row.avg_duration_ms),
        }
        for row in session.execute(statement)
    ]


def workflow_stats(
    session: Session, window: Window, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """Per workflow slug, busiest first; and how many workflows ran in the window."""
    total = func.count().label("total")
    statement = (
        select(
            Execution.workflow_id,
            total,
            func.count().filter(Execution.status == COMPLETED).label("completed"),
            func.count().filter(Execution.status == FAILED).label("failed"),
            func.count().filter(Execution.status == CANCELLED).label("cancelled"),
            func.avg(Execution.duration_ms).label("avg_duration_ms"),
            func.max(Execution.created_at).label("last_run_at"),
        )
        .where(*_executions_in(window))
        .group_by(Execution.workflow_id)
        .order_by(desc(total), Execution.workflow_id)
    )
    count = session.scalar(
        select(func.count(distinct(Execution.workflow_id))).where(*_executions_in(window))
    )
    rows = session.execute(statement.limit(page_size).offset((page - 1) * page_size))
    return [
        {
            **row._asdict(),
            "success_rate": success_rate(row.completed, row.failed),
            "avg_duration_ms": _ms(row.avg_duration_ms),
            "last_run_at": _utc(row.last_run_at),
        }
        for row in rows
    ], count or 0


def error_report(session: Session, window: Window, limit: int) -> dict[str, Any]:
    """Failed executions grouped by (error_type, error_message), and the latest ones."""
    conditions = [*_executions_in(window), Execution.status == FAILED]
    failed_at = func.coalesce(Execution.completed_at, Execution.created_at)
    count = func.count().label("count")
    last_seen = func.max(failed_at).label("last_seen")
    groups = session.execute(
        select(
            Execution.error_type,
            Execution.error_message,
            count,
            last_seen,
            func.array_agg(distinct(Execution.workflow_id)).label("workflow_ids"),
        )
        .where(*conditions)
        .group_by(Execution.error_type, Execution.error_message)
        .order_by(desc(count), desc(last_seen))
        .limit(limit)
    )
    recent = session.execute(
        select(
            Execution.id.label("execution_id"),
            Execution.workflow_id,
            Execution.workflow_version,
            Execution.error_type,
            Execution.error_message,
            failed_at.label("failed_at"),
        )
        .where(*conditions)
        .order_by(desc(failed_at), Execution.id)
        .limit(limit)
    )
    total = session.scalar(select(func.count()).select_from(Execution).where(*conditions))
    return {
        "total_failed": total or 0,
        "groups": [
            {
                **row._asdict(),
                "last_seen": _utc(row.last_seen),
                "workflow_ids": sorted(row.workflow_ids),
            }
            for row in groups
        ],
        "recent": [{**row._asdict(), "failed_at": _utc(row.failed_at)} for row in recent],
    }


def step_stats(
    session: Session, window: Window, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """Per (workflow slug, step id, step type) over the window's step-run attempts."""
    conditions = [
        StepRun.organization_id == window.organization_id,
        StepRun.created_at >= window.start,
        StepRun.created_at <= window.end,
    ]
    if window.workflow_id is not None:
        conditions.append(Execution.workflow_id == window.workflow_id)
    runs = func.count().label("runs")
    key = (Execution.workflow_id, StepRun.step_id, StepRun.step_type)
    grouped: Select[Any] = (
        select(
            *key,
            runs,
            func.count().filter(StepRun.status == StepRunStatus.COMPLETED.value).label("completed"),
            func.count().filter(StepRun.status == StepRunStatus.FAILED.value).label("failures"),
            func.count().filter(StepRun.status == StepRunStatus.SKIPPED.value).label("skipped"),
            func.count().filter(StepRun.attempt > 1).label("retries"),
            func.avg(StepRun.duration_ms).label("avg_duration_ms"),
            func.percentile_cont(0.95).within_group(StepRun.duration_ms).label("p95_duration_ms"),
        )
        .join(
            Execution,
            (Execution.id == StepRun.execution_id)
            & (Execution.organization_id == window.organization_id),
        )
        .where(*conditions)
        .group_by(*key)
    )
    count = session.scalar(
        select(func.count()).select_from(grouped.with_only_columns(*key).subquery())
    )
    rows = session.execute(
        grouped.order_by(desc(runs), *key).limit(page_size).offset((page - 1) * page_size)
    )
    return [
        {
            **row._asdict(),
            "avg_duration_ms": _ms(row.avg_duration_ms),
            "p95_duration_ms": _ms(row.p95_duration_ms),
        }
        for row in rows
    ], count or 0


def success_rate(completed: int, failed: int) -> float | None:
    finished = completed + failed
    return round(completed / finished, 4) if finished else None


def _breakdowns(
    session: Session, window: Window
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Counts by status, by result and by error_type, in one scan (GROUPING SETS)."""
    columns = (Execution.status, Execution.result, Execution.error_type)
    rows = session.execute(
        select(func.grouping(*columns).label("mask"), *columns, func.count().label("n"))
        .where(*_executions_in(window))
        .group_by(func.grouping_sets(*columns))
    )
    by_status = {state.value: 0 for state in ExecutionStatus}
    by_result = {result.value: 0 for result in ExecutionResult}
    error_types = {error_type.value: 0 for error_type in ErrorType}
    for row in rows:
        if row.mask == _BY_STATUS:
            by_status[row.status] = row.n
        elif row.mask == _BY_RESULT and row.result is not None:
            by_result[row.result] = row.n
        elif row.mask == _BY_ERROR_TYPE and row.error_type is not None:
            error_types[row.error_type] = row.n
    return by_status, by_result, error_types


def _executions_in(window: Window) -> list[ColumnElement[bool]]:
    conditions = [
        Execution.organization_id == window.organization_id,
        Execution.created_at >= window.start,
        Execution.created_at <= window.end,
    ]
    if window.workflow_id is not None:
        conditions.append(Execution.workflow_id == window.workflow_id)
    return conditions


def _instant(moment: datetime) -> ColumnElement[Any]:
    return literal(moment, DateTime(timezone=True))


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)
