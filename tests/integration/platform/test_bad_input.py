"""No input is answered 5xx: each class of bad input the OpenAPI fuzzing found gets
a 4xx in the one error shape (issue 19)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
import pytest

from api.auth.tokens import ISSUER
from models.permission import permissions_of
from tests.integration.workflows.builders import wrapped
from tests.support import API, Caller, bearer, register

pytestmark = pytest.mark.integration

ERROR_SHAPE = {"code", "status", "message"}

LIST_PATHS = [
    "/auth/api-keys",
    "/organizations",
    "/organizations/{org}/members",
    "/audit-logs",
    "/workflows",
    "/workflows/{workflow}/versions",
    "/workflows/{workflow}/schedules",
    "/rules",
    "/records",
    "/events",
    "/executions",
    "/executions/paused",
    "/approvals",
    "/schedules",
    "/analytics/workflows",
    "/analytics/steps",
]


@pytest.fixture(scope="module")
def caller(app: Any) -> Caller:
    return register(app.test_client())


@pytest.fixture(scope="module")
def workflow_row_id(caller: Caller) -> str:
    response = caller.post(f"{API}/workflows", wrapped(workflow_id="bad_input_target"))
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def _path(template: str, caller: Caller, workflow_row_id: str) -> str:
    return API + template.format(org=caller.organization_id, workflow=workflow_row_id)


def _assert_client_error(response: Any, code: int = 422) -> dict[str, Any]:
    assert response.status_code == code, (response.status_code, response.get_data(as_text=True))
    body = response.json
    assert set(body) >= ERROR_SHAPE, body
    assert body["code"] == code
    return dict(body)


@pytest.mark.parametrize("template", LIST_PATHS)
@pytest.mark.parametrize("page", [2**63, 2**62, 10**30])
def test_a_page_beyond_what_postgres_counts_is_a_422(
    caller: Caller, workflow_row_id: str, template: str, page: int
) -> None:
    response = caller.get(f"{_path(template, caller, workflow_row_id)}?page={page}")

    body = _assert_client_error(response)
    assert "page" in body["errors"]


@pytest.mark.parametrize(
    "query",
    [
        "events?event_type=order%00created",
        "executions?workflow_id=a%00b",
        "audit-logs?action=a%00",
        "audit-logs?resource_id=%00",
        "workflows?search=%00",
        "workflows?workflow_id=x%00",
        "workflows?tag=%00",
        "rules?search=x%00y",
        "records?entity=%00",
        "records?entity_id=%00",
        "approvals?role=%00",
        "schedules?workflow_id=%00",
        "analytics/stats?workflow_id=a%00",
        "analytics/dashboard?workflow_id=a%00",
        "analytics/trends?workflow_id=a%00",
        "analytics/workflows?workflow_id=a%00",
        "analytics/errors?workflow_id=a%00",
        "analytics/steps?workflow_id=a%00",
    ],
)
def test_a_nul_character_in_a_query_string_is_a_422(caller: Caller, query: str) -> None:
    response = caller.get(f"{API}/{query}")

    body = _assert_client_error(response)
    assert "NUL" in json.dumps(body["errors"])


def test_a_nul_character_in_a_path_is_a_404_or_422(caller: Caller) -> None:
    response = caller.get(f"{API}/records/quote/q%001")

    assert response.status_code in {404, 422}, response.get_data(as_text=True)
    assert set(response.json) >= ERROR_SHAPE


@pytest.mark.parametrize("text", ["\u0000", "a\u0000b", "\ud800", "x\udfff"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("events", lambda s: {"event_type": "order.created", "payload": {"note": s}}),
        ("events", lambda s: {"event_type": "order.created", "payload": {s: 1}}),
        ("events", lambda s: {"event_type": s, "payload": {}}),
        ("events", lambda s: {"event_type": "a", "payload": {"deep": [{"x": [s]}]}}),
        ("workflows", lambda s: wrapped(workflow_id="nul_" + uuid.uuid4().hex[:6], name=s)),
        ("workflows", lambda s: wrapped(workflow_id="nul_" + uuid.uuid4().hex[:6], tags=[s])),
        ("workflows/validate", lambda s: wrapped(description=s)),
        (
            "rules",
            lambda s: {
                "rule_id": "r" + uuid.uuid4().hex[:6],
                "name": s,
                "conditions": [{"field": "a", "operator": "eq", "value": 1}],
            },
        ),
        ("organizations", lambda s: {"name": "Org " + s}),
        ("auth/api-keys", lambda s: {"name": s}),
    ],
)
def test_json_bodies_with_nul_or_lone_surrogates_are_a_422(
    caller: Caller, path: str, body: Any, text: str
) -> None:
    response = caller.client.post(
        f"{API}/{path}",
        data=json.dumps(body(text)),  # ensure_ascii: the escapes are what a client sends
        content_type="application/json",
        headers=caller.headers,
    )

    assert response.status_code in {400, 422}, response.get_data(as_text=True)
    assert set(response.json) >= ERROR_SHAPE


@pytest.mark.parametrize("text", ["\u0000", "a\u0000b", "\ud800", "x\udfff"])
def test_in_a_batch_of_events_only_the_event_holding_nul_or_a_lone_surrogate_is_a_422(
    caller: Caller, text: str
) -> None:
    events = [
        {"event_type": "a", "payload": {"k": text}},
        {"event_type": "a", "payload": {"k": "fine"}},
        {"event_type": text, "payload": {}},
    ]
    response = caller.client.post(
        f"{API}/events/batch",
        data=json.dumps({"events": events}),  # ensure_ascii: the escapes are what a client sends
        content_type="application/json",
        headers=caller.headers,
    )

    assert response.status_code == 207, response.get_data(as_text=True)
    first, fine, third = response.json["results"]
    assert (first["status"], fine["status"], third["status"]) == (422, 202, 422)
    assert set(first["error"]) >= ERROR_SHAPE
    assert list(first["error"]["errors"]) == ["payload.k"]
    assert list(third["error"]["errors"]) == ["event_type"]


@pytest.mark.parametrize("username", ["\ud800", "ada\u0000", "\udc80lovelace"])
def test_a_login_with_a_nul_or_lone_surrogate_username_is_a_4xx(client: Any, username: str) -> None:
    response = client.post(
        f"{API}/auth/login",
        data=json.dumps({"username": username, "password": "correct-horse-9"}),
        content_type="application/json",
    )

    assert response.status_code in {400, 401, 422}, response.get_data(as_text=True)
    assert set(response.json) >= ERROR_SHAPE


def test_a_registration_with_a_lone_surrogate_is_a_422(client: Any) -> None:
    response = client.post(
        f"{API}/auth/register",
        data=json.dumps(
            {"username": "ok_name", "email": "a@example.com", "password": "\ud800" * 12}
        ),
        content_type="application/json",
    )

    _assert_client_error(response)


def test_an_utf8_encoded_surrogate_in_a_body_is_a_4xx(caller: Caller) -> None:
    raw = b'{"event_type": "a", "payload": {"k": "\xed\xa0\x80"}}'

    response = caller.client.post(
        f"{API}/events", data=raw, content_type="application/json", headers=caller.headers
    )

    assert response.status_code in {400, 422}, response.get_data(as_text=True)
    assert set(response.json) >= ERROR_SHAPE


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_numbers_postgres_cannot_store_are_a_4xx(caller: Caller, number: str) -> None:
    raw = '{"event_type": "a", "payload": {"amount": ' + number + "}}"

    response = caller.client.post(
        f"{API}/events", data=raw, content_type="application/json", headers=caller.headers
    )

    assert response.status_code in {400, 422}, response.get_data(as_text=True)
    assert set(response.json) >= ERROR_SHAPE


@pytest.mark.parametrize("resource", ["events", "executions", "audit-logs"])
@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-05:00",  # after year 9999 in UTC
        "2026-01-01T00:00:00+23:59",  # an offset no place on Earth has (Postgres: ±15:59)
        "2026-01-01T00:00:00-20:00",
        "0001-01-01T00:00:00",
    ],
)
@pytest.mark.parametrize("bound", ["since", "until"])
def test_dates_outside_what_postgres_stores_or_with_odd_offsets_are_a_422(
    caller: Caller, resource: str, moment: str, bound: str
) -> None:
    response = caller.get(f"{API}/{resource}?{bound}={quote(moment)}")

    if moment == "0001-01-01T00:00:00":  # year 1 UTC exactly is a valid (if early) bound
        assert response.status_code == 200, response.json
        return
    body = _assert_client_error(response)
    assert bound in body["errors"]


def test_an_access_token_expiring_absurdly_late_is_a_401(
    caller: Caller, base_settings: Any
) -> None:
    claims = jwt.decode(caller.access_token, options={"verify_signature": False})
    now = int(datetime.now(UTC).timestamp())
    claims.update(exp=1e30, iat=now, nbf=now, iss=ISSUER, perms=sorted(permissions_of("admin")))
    token = jwt.encode(claims, base_settings["jwt_secret"], algorithm="HS256")

    response = caller.client.get(f"{API}/auth/me", headers=bearer(token))

    _assert_client_error(response, 401)


@pytest.mark.parametrize("issued_at", [-1e30, 1e30])
def test_an_access_token_issued_at_an_absurd_time_is_a_401(
    caller: Caller, base_settings: Any, issued_at: float
) -> None:
    claims = jwt.decode(caller.access_token, options={"verify_signature": False})
    claims["iat"] = issued_at
    token = jwt.encode(claims, base_settings["jwt_secret"], algorithm="HS256")

    response = caller.client.get(f"{API}/auth/me", headers=bearer(token))

    _assert_client_error(response, 401)


def test_an_over_long_authorization_header_is_a_431_in_the_error_shape(caller: Caller) -> None:
    response = caller.client.get(
        f"{API}/auth/me", headers={"Authorization": "Bearer " + "a" * 20_000}
    )

    _assert_client_error(response, 431)


def test_a_value_longer_than_its_column_is_a_422_not_a_500(caller: Caller) -> None:
    # The Idempotency-Key header is not a schema field: its length reaches the
    # database unchecked, which answers with a DataError.
    response = caller.client.post(
        f"{API}/events",
        json={"event_type": "order.created", "payload": {}},
        headers={**caller.headers, "Idempotency-Key": "k" * 500},
    )

    _assert_client_error(response)


def test_a_database_data_error_is_answered_in_the_error_shape(app: Any) -> None:
    from sqlalchemy import text

    from api.errors import error_for_database

    with app.extensions["iw"].db_engine.connect() as connection:
        try:
            connection.execute(text("SELECT CAST(:x AS jsonb)"), {"x": '"\\u0000"'})
        except Exception as exc:
            error = exc
    with app.test_request_context():
        response = error_for_database(error)

    assert response is not None
    assert response.status_code == 422
    assert response.json["code"] == 422
