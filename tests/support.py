"""Small helpers the tests share: registering users and calling the API as them,
and recording the SQL an engine sends."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from models import driver

API = "/api/v1"
# The Redis server the tests use; a run beside another one (a second work tree) points
# this at a redis-server of its own, since each suite owns fixed DB numbers on it.
TEST_REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")


def redis_db_url(db: int) -> str:
    """The URL of Redis DB `db` on the tests' Redis server."""
    return f"{TEST_REDIS_SERVER}/{db}"


@dataclass
class Caller:
    """A registered user, with the headers that act as them."""

    client: Any
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    organization_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=json, headers=self.headers, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.put(path, json=json, headers=self.headers, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self.headers, **kwargs)

    def switch(self, organization_id: str) -> None:
        response = self.post(
            f"{API}/auth/switch-organization", {"organization_id": organization_id}
        )
        assert response.status_code == 200, response.json
        self.access_token = response.json["access_token"]
        self.refresh_token = response.json["refresh_token"]
        self.organization_id = organization_id

    def me(self) -> dict[str, Any]:
        response = self.get(f"{API}/auth/me")
        assert response.status_code == 200, response.json
        return dict(response.json)

    @property
    def user_id(self) -> str:
        return str(self.me()["user_id"])


@dataclass
class KeyCaller:
    """Calls the API with an X-API-Key."""

    client: Any
    api_key: str
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=json, headers=self.headers, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.put(path, json=json, headers=self.headers, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self.headers, **kwargs)


def unique(prefix: str = "user") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: Any, username: str | None = None, password: str = "correct-horse-9") -> Caller:
    username = username or unique()
    email = f"{username}@example.com"
    response = client.post(
        f"{API}/auth/register",
        json={"username": username, "email": email, "password": password},
    )
    assert response.status_code == 201, response.json
    login = client.post(f"{API}/auth/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.json
    me = client.get(f"{API}/auth/me", headers=bearer(login.json["access_token"]))
    assert me.status_code == 200, me.json
    return Caller(
        client=client,
        username=username,
        email=email,
        password=password,
        access_token=login.json["access_token"],
        refresh_token=login.json["refresh_token"],
        organization_id=me.json["organization_id"],
    )


def add_member(
    admin: Caller, member: Caller, role: str, approver_roles: list[str] | None = None
) -> None:
    response = admin.post(
        f"{API}/organizations/{admin.organization_id}/members",
        {"username": member.username, "role": role, "approver_roles": approver_roles or []},
    )
    assert response.status_code == 201, response.json
    member.switch(admin.organization_id)


def create_api_key(caller: Caller, scopes: list[str] | None = None, **fields: Any) -> KeyCaller:
    body: dict[str, Any] = {"name": fields.pop("name", unique("key")), **fields}
    if scopes is not None:
        body["scopes"] = scopes
    response = caller.post(f"{API}/auth/api-keys", body)
    assert response.status_code == 201, response.json
    return KeyCaller(client=caller.client, api_key=response.json["api_key"], id=response.json["id"])


@contextmanager
def recorded_statements(*engines: Engine) -> Iterator[list[str]]:
    """Every statement these engines send while inside: through SQLAlchemy's execution
    (its cursor events) and on the driver's cursor (models.driver), in order."""
    sent: list[str] = []

    def from_sqlalchemy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    def from_driver(statement: str, seconds: float, error: Exception | None) -> None:
        sent.append(statement)

    for db_engine in engines:
        event.listen(db_engine, "before_cursor_execute", from_sqlalchemy)
        driver.observe(db_engine, from_driver)
    try:
        yield sent
    finally:
        for db_engine in engines:
            event.remove(db_engine, "before_cursor_execute", from_sqlalchemy)
            driver.stop_observing(db_engine, from_driver)
