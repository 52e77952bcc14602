"""Outages of Postgres, Redis or the broker are answered 503 with Retry-After, never 500.

Work the request committed before it met the outage stays accepted: an event
committed while the broker is down is answered 202 (its ticket is left to the
outbox relay).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api.app import create_app
from models.execution import DispatchOutbox
from tests.integration.engine.conftest import create_workflow, set_then_allow
from tests.support import register

API = "/api/v1"
UNREACHABLE_DATABASE = "postgresql+psycopg2://postgres@127.0.0.1:1/nothing"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def make_app(base_settings: dict[str, Any]) -> Iterator[Any]:
    apps: list[Any] = []

    def make(**overrides: Any) -> Any:
        app = create_app({**base_settings, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["iw"].dispose()


def assert_unavailable(response: Any, dependency: str) -> None:
    assert response.status_code == 503, response.json
    assert response.headers["Retry-After"] == "2"
    body = response.json
    assert body["code"] == 503 and body["status"] == "Service Unavailable"
    assert body["errors"] == {"unavailable": [dependency]}
    assert "Idempotency-Key" in body["message"]


def test_a_request_that_cannot_reach_the_database_is_answered_503(make_app: Any) -> None:
    client = make_app(database_url=UNREACHABLE_DATABASE).test_client()
    response = client.post(f"{API}/auth/login", json={"username": "ada", "password": "x" * 12})
    assert_unavailable(response, "database")


def test_a_request_that_cannot_reach_redis_is_answered_503(make_app: Any) -> None:
    client = make_app(redis_url=UNREACHABLE_REDIS).test_client()
    response = client.post(f"{API}/auth/login", json={"username": "ada", "password": "x" * 12})
    assert_unavailable(response, "redis")


def test_ready_names_the_dependency_that_is_down(make_app: Any) -> None:
    response = make_app(redis_url=UNREACHABLE_REDIS).test_client().get("/ready")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json["message"] == "Not ready: redis"


def test_an_event_committed_while_the_broker_is_down_is_accepted(make_app: Any) -> None:
    app = make_app(celery_broker_url=UNREACHABLE_REDIS)
    admin = register(app.test_client())
    workflow = set_then_allow("outage.broker")
    create_workflow(admin, workflow)
    response = admin.post(f"{API}/events", {"event_type": "outage.broker", "payload": {}})
    assert response.status_code == 202, response.json
    [execution_id] = response.json["execution_ids"]
    with app.extensions["iw"].session_factory() as session:
        tickets = session.scalars(
            select(DispatchOutbox).where(DispatchOutbox.execution_id == execution_id)
        ).all()
    assert len(tickets) == 1  # left for the outbox relay to publish
