"""Sign-ins, refreshes and credential checks are counted in the auth metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from tests.support import API, register, unique


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_password_sign_ins_are_counted_by_outcome(client: Any) -> None:
    caller = register(client)
    successes = _value("auth_requests_total", method="password", status="success")
    failures = _value("auth_requests_total", method="password", status="failure")
    invalid = _value("auth_failures_total", reason="invalid_credentials")

    client.post(f"{API}/auth/login", json={"username": caller.username, "password": "wrong-1"})
    client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    )

    assert _value("auth_requests_total", method="password", status="success") == successes + 1
    assert _value("auth_requests_total", method="password", status="failure") == failures + 1
    assert _value("auth_failures_total", reason="invalid_credentials") == invalid + 1


def test_refreshes_and_token_checks_are_counted(client: Any) -> None:
    caller = register(client)
    refreshed = _value("auth_requests_total", method="refresh", status="success")
    valid = _value("auth_token_validations_total", valid="true")
    invalid = _value("auth_token_validations_total", valid="false")
    expired = _value("auth_failures_total", reason="invalid_token")

    client.post(f"{API}/auth/refresh", json={"refresh_token": caller.refresh_token})
    caller.get(f"{API}/auth/me")
    client.get(f"{API}/auth/me", headers={"Authorization": "Bearer " + unique("junk")})

    assert _value("auth_requests_total", method="refresh", status="success") == refreshed + 1
    assert _value("auth_token_validations_total", valid="true") == valid + 1
    assert _value("auth_token_validations_total", valid="false") == invalid + 1
    assert _value("auth_failures_total", reason="invalid_token") == expired + 1


def test_a_missing_permission_is_counted_as_forbidden(client: Any) -> None:
    from tests.support import create_api_key

    caller = register(client)
    key = create_api_key(caller, ["workflow:read"])
    forbidden = _value("auth_failures_total", reason="forbidden")

    key.get(f"{API}/audit-logs")

    assert _value("auth_failures_total", reason="forbidden") == forbidden + 1
