"""The per-IP limit of register/login/refresh (stricter than the per-principal one)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.support import API, register, unique


@pytest.fixture
def strict_app(base_settings: dict[str, Any]) -> Iterator[Any]:
    from api.app import create_app

    application = create_app({**base_settings, "rate_limit_auth": "3/minute"})
    yield application
    application.extensions["iw"].dispose()


def _fresh_ip() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/login", {"username": unique("nobody"), "password": "whatever-1"}),
        ("/auth/refresh", {"refresh_token": "not-a-token"}),
        ("/auth/register", {"username": "x"}),
    ],
)
def test_the_fourth_auth_call_from_one_ip_in_a_minute_is_a_429(
    strict_app: Any, path: str, body: dict[str, Any]
) -> None:
    client = strict_app.test_client()
    ip = _fresh_ip()
    counted = REGISTRY.get_sample_value("rate_limited_requests_total", {"scope": "auth"}) or 0.0

    answers = [
        client.post(API + path, json=body, environ_base={"REMOTE_ADDR": ip}) for _ in range(4)
    ]

    assert 429 not in [a.status_code for a in answers[:3]]
    limited = answers[3]
    assert limited.status_code == 429
    assert limited.json["code"] == 429
    assert limited.json["status"] == "Too Many Requests"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > 0
    assert (
        REGISTRY.get_sample_value("rate_limited_requests_total", {"scope": "auth"}) == counted + 1
    )


def test_the_limit_counts_per_ip(strict_app: Any) -> None:
    client = strict_app.test_client()
    busy, quiet = _fresh_ip(), _fresh_ip()
    body = {"username": unique("nobody"), "password": "whatever-1"}
    for _ in range(3):
        client.post(f"{API}/auth/login", json=body, environ_base={"REMOTE_ADDR": busy})

    assert (
        client.post(f"{API}/auth/login", json=body, environ_base={"REMOTE_ADDR": busy}).status_code
        == 429
    )
    assert (
        client.post(f"{API}/auth/login", json=body, environ_base={"REMOTE_ADDR": quiet}).status_code
        == 401
    )


def test_answers_under_the_limit_carry_no_rate_limit_headers(strict_app: Any) -> None:
    # Only the 429 carries them: reading the window back for every answer would cost
    # a second Redis round trip per request (api/ratelimit.py).
    client = strict_app.test_client()
    ip = _fresh_ip()
    body = {"username": unique("nobody"), "password": "whatever-1"}

    answers = [
        client.post(f"{API}/auth/login", json=body, environ_base={"REMOTE_ADDR": ip})
        for _ in range(4)
    ]

    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    for answer in answers[:3]:
        assert "X-RateLimit-Limit" not in answer.headers
        assert "X-RateLimit-Remaining" not in answer.headers
    assert answers[3].headers["X-RateLimit-Limit"] == "3"


def test_authenticated_endpoints_are_not_under_the_auth_limit(strict_app: Any) -> None:
    client = strict_app.test_client()
    caller = register(client)

    answers = [
        client.get(
            f"{API}/auth/me", headers=caller.headers, environ_base={"REMOTE_ADDR": _fresh_ip()}
        )
        for _ in range(5)
    ]

    assert {a.status_code for a in answers} == {200}


@pytest.fixture
def proxied_app(base_settings: dict[str, Any]) -> Iterator[Any]:
    from api.app import create_app

    application = create_app({**base_settings, "rate_limit_auth": "2/minute", "trusted_proxies": 1})
    yield application
    application.extensions["iw"].dispose()


def _login_via_proxy(client: Any, proxy: str, forwarded_for: str) -> int:
    body = {"username": unique("nobody"), "password": "whatever-1"}
    answer = client.post(
        API + "/auth/login",
        json=body,
        environ_base={"REMOTE_ADDR": proxy},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return int(answer.status_code)


def test_behind_a_trusted_proxy_the_auth_limit_keys_on_the_forwarded_client(
    proxied_app: Any,
) -> None:
    client = proxied_app.test_client()
    proxy, alice, bob = _fresh_ip(), _fresh_ip(), _fresh_ip()

    alice_answers = [_login_via_proxy(client, proxy, alice) for _ in range(3)]
    bob_answer = _login_via_proxy(client, proxy, bob)
    # A client cannot escape its limit by prepending addresses: only the
    # proxy's entry (the rightmost) is believed.
    spoofed = _login_via_proxy(client, proxy, f"{_fresh_ip()}, {alice}")

    assert alice_answers == [401, 401, 429]
    assert bob_answer == 401
    assert spoofed == 429


def test_without_trusted_proxies_every_client_of_a_proxy_shares_its_limit(
    strict_app: Any,
) -> None:
    client = strict_app.test_client()
    proxy = _fresh_ip()

    answers = [_login_via_proxy(client, proxy, _fresh_ip()) for _ in range(4)]

    assert answers == [401, 401, 401, 429]
