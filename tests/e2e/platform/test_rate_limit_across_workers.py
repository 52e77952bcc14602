"""Rate limits live in Redis, so they hold across gunicorn worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

LIMIT = 20


@pytest.fixture(scope="module")
def limited_api(database_url: str, redis_url: str, tmp_path_factory: Any) -> Iterator[Stack]:
    stack = Stack(
        database_url=database_url,
        redis_url=redis_url,
        broker_url=redis_db_url(10),
        workdir=tmp_path_factory.mktemp("ratelimit"),
        api_workers=2,
        extra_env={"RATE_LIMIT_DEFAULT": f"{LIMIT}/minute", "LOG_LEVEL": "WARNING"},
    )
    try:
        stack.start_api()
        stack.wait_ready()
        assert len(stack.children("api")) == 2
        yield stack
    finally:
        stack.stop()


def test_the_per_principal_limit_is_shared_by_both_gunicorn_workers(limited_api: Stack) -> None:
    base = limited_api.api_url + "/api/v1"
    with httpx.Client(timeout=10) as client:
        user = {
            "username": "limited",
            "email": "limited@example.com",
            "password": "a-long-password",
        }
        assert client.post(f"{base}/auth/register", json=user).status_code == 201
        login = {"username": user["username"], "password": user["password"]}
        token = client.post(f"{base}/auth/login", json=login).json()["access_token"]
    statuses: list[int] = []
    for _ in range(LIMIT + 10):
        # A fresh connection per request, so the kernel spreads them over both workers.
        with httpx.Client(timeout=10, headers={"Connection": "close"}) as client:
            response = client.get(f"{base}/workflows", headers={"Authorization": f"Bearer {token}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
            assert response.json()["code"] == 429
    # With per-process counters two workers would each allow LIMIT: all 30 would pass.
    assert statuses.count(200) == LIMIT
    assert statuses[LIMIT:] == [429] * 10
