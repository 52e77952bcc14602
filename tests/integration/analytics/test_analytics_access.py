"""Analytics parameters are a closed vocabulary, and reading analytics needs `analytics:read`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.support import API, Caller, add_member, create_api_key, register

pytestmark = pytest.mark.integration

ENDPOINTS = ("dashboard", "stats", "trends", "workflows", "errors", "steps")
INJECTIONS = (
    "hour'); drop table executions;--",
    "hour' || pg_sleep(1) || '",
    "1 hour",
    "HOUR",
    "week",
    "",
)


@pytest.fixture(scope="module")
def admin(app: Any) -> Caller:
    return register(app.test_client())


def field_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Field errors, whether or not the error handler keeps webargs' location key."""
    errors = dict(body["errors"])
    return dict(errors.get("query", errors))


def _get(caller: Any, endpoint: str, query: str = "") -> Any:
    return caller.get(f"{API}/analytics/{endpoint}{'?' + query if query else ''}")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_answers_with_the_default_window(admin: Caller, endpoint: str) -> None:
    response = _get(admin, endpoint)
    assert response.status_code == 200, response.json
    assert response.json["time_range"] == "24h"
    assert response.json["workflow_id"] is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("time_range", ["2h", "1d", "24H", "all", "", "1h;select 1"])
def test_an_unknown_time_range_is_a_422(admin: Caller, endpoint: str, time_range: str) -> None:
    response = _get(admin, endpoint, f"time_range={quote(time_range)}")
    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    assert "time_range" in field_errors(response.json)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("interval", INJECTIONS)
def test_an_unknown_interval_is_a_422_and_never_reaches_sql(
    app: Any, admin: Caller, endpoint: str, interval: str
) -> None:
    response = _get(admin, endpoint, f"interval={quote(interval)}")
    assert response.status_code == 422, response.json
    assert "interval" in field_errors(response.json)
    with app.extensions["iw"].session_factory() as session:
        from sqlalchemy import text

        assert session.scalar(text("SELECT to_regclass('executions') IS NOT NULL"))


@pytest.mark.parametrize(
    ("time_range", "interval"),
    [("24h", "minute"), ("7d", "minute"), ("30d", "minute"), ("30d", "hour"), ("1h", "day")],
)
def test_an_interval_that_does_not_fit_the_range_is_a_422(
    admin: Caller, time_range: str, interval: str
) -> None:
    response = _get(admin, "trends", f"time_range={time_range}&interval={interval}")
    assert response.status_code == 422, response.json
    message = field_errors(response.json)["interval"][0]
    assert time_range in message


@pytest.mark.parametrize(
    ("time_range", "interval", "buckets"),
    [("1h", "minute", 61), ("1h", "hour", 2), ("24h", "hour", 25), ("24h", "day", 2),
     ("7d", "hour", 169), ("7d", "day", 8), ("30d", "day", 31)],
)  # fmt: skip
def test_each_fitting_interval_yields_every_bucket(
    admin: Caller, time_range: str, interval: str, buckets: int
) -> None:
    response = _get(admin, "trends", f"time_range={time_range}&interval={interval}")
    assert response.status_code == 200, response.json
    # 1h by hour and 24h by day span two buckets unless the window starts on a boundary.
    assert len(response.json["buckets"]) in (buckets, buckets - 1)


@pytest.mark.parametrize(
    "query", ["page=0", "page_size=101", "limit=0", "limit=101", "workflow_id="]
)
def test_bad_paging_and_filters_are_422(admin: Caller, query: str) -> None:
    endpoint = "errors" if query.startswith("limit") else "steps"
    assert _get(admin, endpoint, query).status_code == 422


def test_a_workflow_id_is_a_value_not_sql(admin: Caller) -> None:
    response = _get(admin, "stats", "workflow_id=" + quote("x' OR '1'='1"))
    assert response.status_code == 200
    assert response.json["total"] == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_role_without_analytics_read_is_refused(
    client: Any, admin: Caller, endpoint: str
) -> None:
    from models.permission import permissions_of

    assert "analytics:read" not in permissions_of("agent")
    agent = register(client)
    add_member(admin, agent, "agent")
    response = _get(agent, endpoint)
    assert response.status_code == 403
    assert response.json["message"] == "Missing permission: analytics:read"


def test_a_viewer_may_read_analytics(client: Any, admin: Caller) -> None:
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")
    assert _get(viewer, "dashboard").status_code == 200


def test_an_api_key_needs_the_analytics_scope(admin: Caller) -> None:
    scoped = create_api_key(admin, ["analytics:read"])
    unscoped = create_api_key(admin, ["workflow:read"])
    assert scoped.get(f"{API}/analytics/stats").status_code == 200
    assert unscoped.get(f"{API}/analytics/stats").status_code == 403


def test_analytics_need_credentials(client: Any) -> None:
    assert client.get(f"{API}/analytics/dashboard").status_code == 401


def test_every_analytics_endpoint_is_documented(client: Any) -> None:
    spec = client.get(f"{API}/openapi.json").json
    for endpoint in ENDPOINTS:
        operation = spec["paths"][f"{API}/analytics/{endpoint}"]["get"]
        assert operation["summary"]
        assert "Requires `analytics:read`" in operation["description"]
        assert {"200", "401", "403", "422", "429"} <= set(operation["responses"])
        assert [code for code in operation["responses"] if code < "400"] == ["200"]
        parameters = {parameter["name"] for parameter in operation["parameters"]}
        assert {"time_range", "interval", "workflow_id"} <= parameters
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema
