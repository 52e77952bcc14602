"""HTTP metrics for every request and the API's `/metrics` (all gunicorn workers).

The stored-state gauges (pending approvals, active/waiting executions, outbox
backlog, queue lengths) are computed here at scrape time, so only the API
target carries them (alerts aggregate them with `max`).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

import redis
from flask import Blueprint, Flask, Response, g, request
from sqlalchemy import text

from api.ai.providers import configured_model
from api.services import services
from models.enabled_workflows import enabled_workflows
from monitoring import metrics
from monitoring.baseline import (
    AI_DISABLED_MODEL,
    API_FAMILIES,
    KnownLabels,
    KnownSeries,
    KnownWorkflow,
)
from monitoring.exposition import StateCollector, StateSnapshot, render_metrics

blp = Blueprint("metrics", __name__)

# A waiting execution whose due time passed this long ago was missed by the jobs.
OVERDUE_GRACE = timedelta(minutes=2)
# A running execution whose heartbeat is this old is stuck (longer than any sweep).
STUCK_AFTER = timedelta(minutes=10)
# Celery's Redis transport keeps priorities in sub-queues named "<queue>\x06\x16<n>".
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
QUEUES = ("workflows",)


def _before() -> None:
    g.metrics_started = time.perf_counter()
    metrics.enter_in_flight()


def _after(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is None:
        return response
    path = request.url_rule.rule if request.url_rule else "unmatched"
    metrics.record_http_request(
        request.method,
        path,
        response.status_code,
        time.perf_counter() - started,
        request.content_length or 0,
        # Never measure a streamed body: that would buffer it (SSE) until the stream ends.
        0 if response.is_streamed else (response.calculate_content_length() or 0),
    )
    return response


def _teardown(_error: BaseException | None) -> None:
    metrics.exit_in_flight()


def install_http_metrics(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)
    metrics.preinitialise_auth_metrics()


@blp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus exposition of every gunicorn worker plus the stored-state gauges."""
    under_gunicorn = "gunicorn.arbiter" in sys.modules and os.environ.get(
        "PROMETHEUS_MULTIPROC_DIR"
    )
    body, content_type = render_metrics(
        [StateCollector(fetch_state)],
        process_root_pid=os.getppid() if under_gunicorn else None,
        known=KnownSeries(fetch_known_labels, API_FAMILIES),
    )
    return Response(body, content_type=content_type)


def ai_model_label() -> str:
    """The `model` label of a request that names none: the configured model, or `none`."""
    return configured_model(services().settings) or AI_DISABLED_MODEL


def fetch_known_labels() -> KnownLabels:
    """What the zero series of this target are made of (monitoring/baseline.py)."""
    with services().db_engine.connect() as connection:
        connection.execute(text("SET LOCAL statement_timeout = 2000"))
        workflows = [KnownWorkflow(*row) for row in enabled_workflows(connection)]
    return KnownLabels(workflows=workflows, ai_models=(ai_model_label(),))


def fetch_state() -> StateSnapshot:
    now = datetime.now(UTC)
    with services().db_engine.connect() as connection:
        connection.execute(text("SET LOCAL statement_timeout = 2000"))
        approvals = connection.execute(
            text("SELECT count(*) FROM approvals WHERE status = 'pending'")
        ).scalar_one()
        rows = connection.execute(
            text(
                "SELECT workflow_id, status, count(*) FROM executions "
                "WHERE status IN ('pending', 'running', 'waiting', 'paused') "
                "GROUP BY workflow_id, status"
            )
        ).all()
        # Every enabled workflow gets a series, 0 when idle, so alerts see it disappear to 0.
        enabled = connection.execute(
            text("SELECT DISTINCT workflow_id FROM workflows WHERE enabled")
        ).scalars()
        known = set(enabled)
        overdue = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM waits WHERE status = 'waiting' AND due_at < :cutoff)"
                " + (SELECT count(*) FROM approvals WHERE status = 'pending'"
                " AND expires_at < :cutoff)"
            ),
            {"cutoff": now - OVERDUE_GRACE},
        ).scalar_one()
        stuck = connection.execute(
            text(
                "SELECT count(*) FROM executions"
                " WHERE status = 'running' AND heartbeat_at < :cutoff"
            ),
            {"cutoff": now - STUCK_AFTER},
        ).scalar_one()
        outbox_pending, oldest = connection.execute(
            text(
                "SELECT count(*), min(created_at) FROM dispatch_outbox WHERE available_at <= :now"
            ),
            {"now": now},
        ).one()
    active: dict[str, int] = dict.fromkeys(known, 0)
    waiting: dict[str, int] = dict.fromkeys(known, 0)
    for workflow_id, status, count in rows:
        active[workflow_id] = active.get(workflow_id, 0) + count
        if status == "waiting":
            waiting[workflow_id] = waiting.get(workflow_id, 0) + count
    for workflow_id in active:
        waiting.setdefault(workflow_id, 0)
    return StateSnapshot(
        approvals_pending=approvals,
        executions_active=active,
        executions_waiting=waiting,
        executions_overdue=overdue,
        executions_stuck=stuck,
        outbox_pending=outbox_pending,
        outbox_oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else 0.0,
        queue_lengths=_queue_lengths(),
    )


_broker_clients: dict[str, redis.Redis] = {}


def _broker() -> redis.Redis:
    settings = services().settings
    if settings.broker_url == settings.redis_url:
        return services().redis
    if settings.broker_url not in _broker_clients:
        _broker_clients[settings.broker_url] = redis.Redis.from_url(
            settings.broker_url, socket_timeout=2
        )
    return _broker_clients[settings.broker_url]


def _queue_lengths() -> dict[str, int]:
    client = _broker()
    lengths = {}
    for queue in QUEUES:
        names = [queue] + [f"{queue}{PRIORITY_SEPARATOR}{n}" for n in PRIORITY_STEPS]
        lengths[queue] = sum(int(client.llen(name)) for name in names)
    return lengths
