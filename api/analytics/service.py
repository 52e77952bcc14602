"""Analytics reports: a window from the request, the queries, one read-only session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.analytics import query
from api.analytics.window import Window
from api.auth.principal import Principal
from api.services import services

# A constant statement: SET takes no bind parameters, and nothing here comes from a request.
SORT_MEMORY = text("SET LOCAL work_mem = '64MB'")


def dashboard(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    window = _window(principal, params)
    with _reading() as session:
        summary = query.execution_summary(session, window)
        top, _ = query.workflow_stats(session, window, page=1, page_size=query.TOP_WORKFLOWS)
        return {
            **window.describe(),
            "executions": {
                "total": summary["total"],
                "by_status": summary["by_status"],
                "by_result": summary["by_result"],
            },
            "success_rate": summary["success_rate"],
            "avg_duration_ms": summary["avg_duration_ms"],
            "p95_duration_ms": summary["p95_duration_ms"],
            **query.live_counts(session, window),
            "events_received": query.events_received(session, window),
            "top_workflows": top,
        }


def stats(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    return _report(principal, params, query.execution_summary)


def trends(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    window = _window(principal, params)
    with _reading() as session:
        buckets = query.trends(session, window)
    return {**window.describe(), "interval": window.interval, "buckets": buckets}


def workflows(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    return _page(principal, params, "workflows", query.workflow_stats)


def errors(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    window = _window(principal, params)
    with _reading() as session:
        report = query.error_report(session, window, params["limit"])
    return {**window.describe(), **report}


def steps(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    return _page(principal, params, "steps", query.step_stats)


def _report(
    principal: Principal,
    params: dict[str, Any],
    compute: Callable[[Session, Window], dict[str, Any]],
) -> dict[str, Any]:
    window = _window(principal, params)
    with _reading() as session:
        return {**window.describe(), **compute(session, window)}


def _page(
    principal: Principal,
    params: dict[str, Any],
    plural: str,
    compute: Callable[[Session, Window, int, int], tuple[list[dict[str, Any]], int]],
) -> dict[str, Any]:
    window = _window(principal, params)
    page, page_size = params["page"], params["page_size"]
    with _reading() as session:
        items, total = compute(session, window, page, page_size)
    return {
        **window.describe(),
        plural: items,
        "total": total,
        "page": page,
        "page_size": page_size,
    }


def _window(principal: Principal, params: dict[str, Any]) -> Window:
    return Window.ending(datetime.now(UTC), principal.organization_id, params)


@contextmanager
def _reading() -> Iterator[Session]:
    """One transaction that only reads: REPEATABLE READ so a report is one snapshot."""
    with services().session_factory() as session:
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        # Percentiles sort their group's rows: keep a 30-day window's sort in memory.
        session.execute(SORT_MEMORY)
        try:
            yield session
        finally:
            session.rollback()
