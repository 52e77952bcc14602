"""Fixtures for engine integration tests: real Postgres and Redis, the API in-process,
step tasks driven in-process (deterministic), local HTTP and SMTP sinks.

Tickets the API or the tasks publish go to a dedicated broker DB (BROKER_URL)
that no worker consumes here; `drive()` runs the outbox directly instead, as
the relay and the worker would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select, text

from tests.integration.engine.sinks import HttpSink, SmtpSink
from tests.support import Caller, redis_db_url, register, unique

BROKER_URL = redis_db_url(12)
API = "/api/v1"


class RecordingPublisher:
    """Stands in for the Celery publisher: remembers what would have been sent."""

    def __init__(self) -> None:
        self.published: list[Any] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []  # other tasks' messages (send)

    def publish(self, tickets: Any) -> int:
        items = list(tickets)
        self.published.extend(items)
        return len(items)

    def publish_rows(self, rows: Any) -> int:
        from tasks.dispatch import Ticket

        return self.publish(Ticket.from_row(row) for row in rows)

    def send(self, task_name: str, kwargs: dict[str, Any] | None = None) -> None:
        self.sent.append((task_name, dict(kwargs or {})))


@pytest.fixture(scope="session")
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def engine_settings(
    base_settings: dict[str, Any], http_sink: HttpSink, smtp_sink: SmtpSink
) -> dict[str, Any]:
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    broker.close()
    return {
        **base_settings,
        "celery_broker_url": BROKER_URL,
        "outbound_allow_cidrs": ("127.0.0.0/8",),
        "outbound_timeout_seconds": 5.0,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_sink.port,
        "public_url": "http://workflows.test",
        "slack_webhook_url": f"{http_sink.url}/slack",
        "workflow_secrets": {"fraud_api_token": "s3cr3t-token-value"},
    }


@pytest.fixture(scope="session")
def app(engine_settings: dict[str, Any]) -> Iterator[Any]:
    from api.app import create_app

    application = create_app(engine_settings)
    yield application
    application.extensions["iw"].dispose()


@pytest.fixture(scope="session")
def rt(engine_settings: dict[str, Any]) -> Iterator[Any]:
    from models.config import load_settings
    from tasks import runtime

    settings = load_settings(environ={}, overrides=engine_settings)
    runtime_ = runtime.configure(settings)
    runtime_._publisher = RecordingPublisher()  # type: ignore[assignment]
    yield runtime_
    runtime_.dispose()


@pytest.fixture
def admin(client: Any) -> Caller:
    return register(client)


def set_then_allow(event: str, *, timeout: str | None = None) -> dict[str, Any]:
    """A two-step workflow: `a` sets a value, `b` allows."""
    definition: dict[str, Any] = {
        "trigger": {"type": "event", "event": event},
        "steps": [
            {
                "id": "a",
                "type": "execute",
                "execute": [{"type": "set", "values": {"x": 1}}],
                "next": "b",
            },
            {"id": "b", "type": "action", "action": {"type": "allow"}},
        ],
    }
    if timeout:
        definition["timeout"] = timeout
    return {"workflow_id": unique("wf"), "version": "1", "name": "Set", "definition": definition}


def create_workflow(caller: Caller, body: dict[str, Any], enabled: bool = True) -> dict[str, Any]:
    response = caller.post(f"{API}/workflows", {**body, "enabled": enabled})
    assert response.status_code == 201, response.json
    return dict(response.json)


def send_event(
    caller: Caller, event_type: str, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    response = caller.post(f"{API}/events", {"event_type": event_type, "payload": payload, **extra})
    assert response.status_code == 202, response.json
    return dict(response.json)


def drive(rt: Any, *, rounds: int = 200, include_delayed: bool = False) -> list[str]:
    """Run due tickets in-process until none is left; returns each task's outcome."""
    from models.execution import DispatchOutbox
    from tasks.dispatch import REDELIVERY_GRACE, Ticket
    from tasks.steprun import run_step_message

    outcomes: list[str] = []
    for _ in range(rounds):
        horizon = datetime.now(UTC) + (
            timedelta(days=3650) if include_delayed else REDELIVERY_GRACE
        )
        with rt.session_factory() as session:
            rows = session.scalars(
                select(DispatchOutbox)
                .where(DispatchOutbox.available_at <= horizon)
                .order_by(DispatchOutbox.id)
            ).all()
            tickets = [Ticket.from_row(row) for row in rows]
        if not tickets:
            return outcomes
        progressed = False
        for ticket in tickets:
            if include_delayed:
                make_due(rt)
            outcome = run_step_message(rt, Ticket.parse(ticket.message()))
            if outcome != "early":
                outcomes.append(outcome)
                progressed = True
        if not progressed:
            return outcomes  # only backoffs left: not due yet
    raise AssertionError(f"still running after {rounds} rounds: {outcomes[-10:]}")


def make_due(rt: Any) -> None:
    """Pretend every backoff elapsed."""
    with rt.session_factory() as session:
        session.execute(text("UPDATE step_runs SET due_at = now() WHERE status = 'pending'"))
        session.execute(
            text("UPDATE dispatch_outbox SET available_at = now() WHERE available_at > now()")
        )
        session.commit()


def execution(caller: Caller, execution_id: str) -> dict[str, Any]:
    response = caller.get(f"{API}/executions/{execution_id}")
    assert response.status_code == 200, response.json
    return dict(response.json)


def trace(caller: Caller, execution_id: str) -> dict[str, Any]:
    response = caller.get(f"{API}/executions/{execution_id}/trace")
    assert response.status_code == 200, response.json
    return dict(response.json)


def path(trace_body: dict[str, Any]) -> list[str]:
    return [
        step["step_id"]
        for step in trace_body["steps"]
        if step["status"] in ("completed", "failed") and not step["branch_key"]
    ]
