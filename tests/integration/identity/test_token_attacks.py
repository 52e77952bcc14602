"""Forged, expired and stale credentials get 401 in the one error shape."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from api.auth.tokens import ISSUER, issue_access_token
from models.permission import permissions_of
from tests.support import API, add_member, bearer, register


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(caller: Any) -> dict[str, Any]:
    return jwt.decode(caller.access_token, options={"verify_signature": False})


def test_an_expired_access_token_is_refused(client: Any, base_settings: Any) -> None:
    caller = register(client)
    claims = _claims(caller)
    token = issue_access_token(
        secret=base_settings["jwt_secret"],
        user_id=uuid.UUID(claims["sub"]),
        organization_id=uuid.UUID(claims["org"]),
        role="admin",
        permissions=permissions_of("admin"),
        now=datetime.now(UTC) - timedelta(hours=1),
        ttl=timedelta(minutes=15),
    )

    response = client.get(f"{API}/auth/me", headers=bearer(token))

    assert response.status_code == 401
    assert response.json["code"] == 401
    assert "expired" in response.json["message"]


def test_a_token_signed_with_another_secret_is_refused(client: Any) -> None:
    caller = register(client)
    forged = jwt.encode(_claims(caller), "some-other-secret-of-32-bytes!!!", algorithm="HS256")

    response = client.get(f"{API}/auth/me", headers=bearer(forged))

    assert response.status_code == 401
    assert "signature" in response.json["message"]


def test_a_tampered_payload_is_refused(client: Any) -> None:
    caller = register(client)
    header, _, signature = caller.access_token.split(".")
    claims = {**_claims(caller), "role": "admin", "org": str(uuid.uuid4())}

    response = client.get(f"{API}/auth/me", headers=bearer(f"{header}.{_b64(claims)}.{signature}"))

    assert response.status_code == 401


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_alg_none_token_is_refused(client: Any, alg: str) -> None:
    caller = register(client)
    token = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims(caller))}."

    response = client.get(f"{API}/auth/me", headers=bearer(token))

    assert response.status_code == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_of_another_algorithm_is_refused(client: Any, base_settings: Any) -> None:
    caller = register(client)
    token = jwt.encode(_claims(caller), base_settings["jwt_secret"], algorithm="HS512")

    response = client.get(f"{API}/auth/me", headers=bearer(token))

    assert response.status_code == 401


def test_a_token_without_the_issuer_is_refused(client: Any, base_settings: Any) -> None:
    caller = register(client)
    claims = {k: v for k, v in _claims(caller).items() if k != "iss"}
    token = jwt.encode(claims, base_settings["jwt_secret"], algorithm="HS256")

    response = client.get(f"{API}/auth/me", headers=bearer(token))

    assert response.status_code == 401


def test_a_refresh_token_is_not_an_access_token(client: Any) -> None:
    caller = register(client)

    response = client.get(f"{API}/auth/me", headers=bearer(caller.refresh_token))

    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "iwk_not-a-real-key"},
    ],
)
def test_missing_or_garbage_credentials_are_refused(client: Any, headers: dict[str, str]) -> None:
    response = client.get(f"{API}/auth/me", headers=headers)

    assert response.status_code == 401
    assert set(response.json) >= {"code", "status", "message"}


def test_a_valid_token_for_an_organization_one_has_left_is_refused(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_viewer")
    member_id = member.user_id

    admin.delete(f"{API}/organizations/{admin.organization_id}/members/{member_id}")

    assert member.get(f"{API}/auth/me").status_code == 401
    assert (
        client.post(f"{API}/auth/refresh", json={"refresh_token": member.refresh_token}).status_code
        == 401
    )


def test_the_issuer_is_pinned(client: Any, base_settings: Any) -> None:
    caller = register(client)
    claims = {**_claims(caller), "iss": "someone-else"}
    assert claims["iss"] != ISSUER
    token = jwt.encode(claims, base_settings["jwt_secret"], algorithm="HS256")

    response = client.get(f"{API}/auth/me", headers=bearer(token))

    assert response.status_code == 401
