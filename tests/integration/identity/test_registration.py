"""POST /auth/register and POST /auth/login."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from models.business import AuditLog
from models.identity import LoginAttempt
from tests.support import API, bearer, register, unique


def _register(client: Any, **overrides: Any) -> Any:
    username = overrides.pop("username", unique())
    body = {
        "username": username,
        "email": f"{username}@example.com",
        "password": "correct-horse-9",
        **overrides,
    }
    return client.post(f"{API}/auth/register", json=body)


def _audit_actions(app: Any, **where: Any) -> list[str]:
    with app.extensions["iw"].session_factory() as session:
        statement = select(AuditLog.action).order_by(AuditLog.created_at, AuditLog.action)
        for name, value in where.items():
            statement = statement.where(getattr(AuditLog, name) == value)
        return list(session.scalars(statement))


def test_registration_creates_the_user_their_organization_and_a_session(client: Any) -> None:
    username = unique("Reg")
    response = _register(client, username=username, first_name="Ada", last_name="Lovelace")

    assert response.status_code == 201, response.json
    body = response.json
    assert body["user"]["username"] == username
    assert body["user"]["email"] == f"{username}@example.com"
    assert body["user"]["first_name"] == "Ada"
    assert "password" not in body["user"]
    assert "password_hash" not in body["user"]
    assert body["organization"]["role"] == "admin"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    me = client.get(f"{API}/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json["organization_id"] == body["organization"]["id"]
    assert me.json["role"] == "admin"
    assert "organization:members" in me.json["permissions"]
    assert "audit:read" in me.json["permissions"]


def test_registration_is_audited(client: Any, app: Any) -> None:
    response = _register(client)
    organization_id = response.json["organization"]["id"]

    actions = _audit_actions(app, organization_id=organization_id)

    assert set(actions) == {"organization_created", "user_registered"}


def test_a_registered_user_can_sign_in_at_once_with_username_or_email(client: Any) -> None:
    caller = register(client)

    by_email = client.post(
        f"{API}/auth/login", json={"username": caller.email.upper(), "password": caller.password}
    )

    assert by_email.status_code == 200
    assert set(by_email.json) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert by_email.json["token_type"] == "Bearer"


@pytest.mark.parametrize("field", ["username", "email"])
def test_a_taken_username_or_email_is_a_conflict_whatever_its_case(client: Any, field: str) -> None:
    first = register(client)
    other = unique()
    taken = {"username": first.username.upper(), "email": first.email.upper()}[field]
    body = {"username": other, "email": f"{other}@example.com", field: taken}

    response = _register(client, **body)

    assert response.status_code == 409
    assert response.json["code"] == 409
    assert response.json["status"] == "Conflict"
    assert field in response.json["errors"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "semi;colon"}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"username": "samesame1", "password": "SameSame1"}, "password"),
        ({"unexpected": "field"}, "unexpected"),
    ],
)
def test_an_invalid_registration_answers_422_in_the_one_error_shape(
    client: Any, overrides: dict[str, Any], field: str
) -> None:
    response = _register(client, **overrides)

    assert response.status_code == 422
    assert response.json["code"] == 422
    assert response.json["status"] == "Unprocessable Entity"
    assert isinstance(response.json["message"], str)
    assert isinstance(response.json["errors"][field], list)


def test_a_missing_field_is_named_in_the_errors(client: Any) -> None:
    response = client.post(f"{API}/auth/register", json={"username": unique()})

    assert response.status_code == 422
    assert set(response.json["errors"]) == {"email", "password"}


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(client: Any) -> None:
    caller = register(client)

    wrong_password = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": "wrong-password"}
    )
    unknown_user = client.post(
        f"{API}/auth/login", json={"username": unique("ghost"), "password": "wrong-password"}
    )

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json == unknown_user.json
    assert wrong_password.json["message"] == "Invalid username or password"


def test_every_sign_in_attempt_is_recorded_and_audited(client: Any, app: Any) -> None:
    caller = register(client)  # one successful sign-in
    client.post(f"{API}/auth/login", json={"username": caller.username, "password": "nope-nope"})

    with app.extensions["iw"].session_factory() as session:
        attempts = session.scalars(
            select(LoginAttempt).where(LoginAttempt.username == caller.username.lower())
        ).all()
    actions = _audit_actions(app, organization_id=caller.organization_id)

    assert sorted((a.succeeded, a.reason) for a in attempts) == [
        (False, "invalid_credentials"),
        (True, None),
    ]
    assert actions.count("login_success") == 1
    assert actions.count("login_failure") == 1


def test_a_failed_sign_in_of_an_unknown_user_is_audited_without_an_organization(
    client: Any, app: Any
) -> None:
    ghost = unique("ghost")

    client.post(f"{API}/auth/login", json={"username": ghost, "password": "whatever-1"})

    with app.extensions["iw"].session_factory() as session:
        entry = session.scalars(
            select(AuditLog)
            .where(AuditLog.action == "login_failure")
            .order_by(AuditLog.created_at.desc())
        ).first()
    assert entry is not None
    assert entry.organization_id is None
    assert entry.changes["username"] == ghost


def test_repeated_failures_throttle_the_username_even_with_the_right_password(
    client: Any,
) -> None:
    caller = register(client)
    for _ in range(5):
        failed = client.post(
            f"{API}/auth/login", json={"username": caller.username, "password": "bad-guess"}
        )
        assert failed.status_code == 401

    sixth = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    )

    assert sixth.status_code == 429
    assert sixth.json["code"] == 429
    assert sixth.json["status"] == "Too Many Requests"
    retry_after = int(sixth.headers["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    by_email = client.post(
        f"{API}/auth/login", json={"username": caller.email, "password": caller.password}
    )
    assert by_email.status_code == 429  # the same account, whatever it is called by


def test_throttling_one_username_leaves_the_others_alone(client: Any) -> None:
    victim = register(client)
    bystander = register(client)
    for _ in range(5):
        client.post(f"{API}/auth/login", json={"username": victim.username, "password": "x-x-x-x"})

    response = client.post(
        f"{API}/auth/login", json={"username": bystander.username, "password": bystander.password}
    )

    assert response.status_code == 200


def test_throttling_ends_when_the_failures_leave_the_window(client: Any, app: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    caller = register(client)
    for _ in range(5):
        client.post(f"{API}/auth/login", json={"username": caller.username, "password": "x-x-x-x"})
    assert (
        client.post(
            f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
        ).status_code
        == 429
    )
    with app.extensions["iw"].session_factory() as session:
        session.execute(
            update(LoginAttempt)
            .where(LoginAttempt.username == caller.username.lower())
            .values(created_at=LoginAttempt.created_at - timedelta(minutes=16))
        )
        session.commit()

    response = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    )

    assert response.status_code == 200
