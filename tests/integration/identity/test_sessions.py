"""Refresh rotation, logout, password change, organization switch and /auth/me."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from api.auth.tokens import hash_token
from models.business import AuditLog
from models.identity import RefreshToken
from tests.support import API, add_member, bearer, register


def _refresh(client: Any, token: str) -> Any:
    return client.post(f"{API}/auth/refresh", json={"refresh_token": token})


def test_refreshing_rotates_the_token_within_its_family(client: Any, app: Any) -> None:
    caller = register(client)

    response = _refresh(client, caller.refresh_token)

    assert response.status_code == 200
    assert set(response.json) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert response.json["refresh_token"] != caller.refresh_token
    me = client.get(f"{API}/auth/me", headers=bearer(response.json["access_token"]))
    assert me.status_code == 200
    with app.extensions["iw"].session_factory() as session:
        old, new = (
            session.scalars(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
            ).one()
            for raw in (caller.refresh_token, response.json["refresh_token"])
        )
    assert old.rotated_at is not None
    assert new.rotated_at is None
    assert old.family_id == new.family_id


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client: Any, app: Any) -> None:
    caller = register(client)
    second = _refresh(client, caller.refresh_token).json["refresh_token"]
    newest = _refresh(client, second).json["refresh_token"]

    reuse = _refresh(client, caller.refresh_token)

    assert reuse.status_code == 401
    assert reuse.json["code"] == 401
    assert _refresh(client, newest).status_code == 401  # even the newest is dead
    with app.extensions["iw"].session_factory() as session:
        family = session.scalars(
            select(RefreshToken).where(
                RefreshToken.family_id
                == select(RefreshToken.family_id)
                .where(RefreshToken.token_hash == hash_token(newest))
                .scalar_subquery()
            )
        ).all()
        audited = session.scalars(
            select(AuditLog.action).where(
                AuditLog.organization_id == caller.organization_id,
                AuditLog.action == "refresh_token_reused",
            )
        ).all()
    assert len(family) == 3
    assert all(token.revoked_at is not None for token in family)
    assert audited == ["refresh_token_reused"]


def test_reusing_a_token_leaves_the_users_other_sessions_alone(client: Any) -> None:
    caller = register(client)  # its login opened a second family besides registration's
    other_session = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    ).json["refresh_token"]
    _refresh(client, caller.refresh_token)

    assert _refresh(client, caller.refresh_token).status_code == 401
    assert _refresh(client, other_session).status_code == 200


def test_an_expired_refresh_token_is_refused(client: Any, app: Any) -> None:
    caller = register(client)
    with app.extensions["iw"].session_factory() as session:
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hash_token(caller.refresh_token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()

    response = _refresh(client, caller.refresh_token)

    assert response.status_code == 401
    assert "expired" in response.json["message"]


def test_an_unknown_refresh_token_is_refused(client: Any) -> None:
    response = _refresh(client, "not-a-token")

    assert response.status_code == 401


def test_a_refresh_body_without_the_token_is_a_422(client: Any) -> None:
    response = client.post(f"{API}/auth/refresh", json={})

    assert response.status_code == 422
    assert "refresh_token" in response.json["errors"]


def test_logout_with_a_refresh_token_ends_that_session_only(client: Any) -> None:
    caller = register(client)
    other = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    ).json

    response = caller.post(f"{API}/auth/logout", {"refresh_token": caller.refresh_token})

    assert response.status_code == 204
    assert _refresh(client, caller.refresh_token).status_code == 401
    assert caller.get(f"{API}/auth/me").status_code == 401  # the calling access token too
    assert client.get(f"{API}/auth/me", headers=bearer(other["access_token"])).status_code == 200
    assert _refresh(client, other["refresh_token"]).status_code == 200


def test_logout_without_a_refresh_token_ends_every_session(client: Any) -> None:
    caller = register(client)
    other = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    ).json

    response = caller.post(f"{API}/auth/logout")

    assert response.status_code == 204
    assert _refresh(client, caller.refresh_token).status_code == 401
    assert _refresh(client, other["refresh_token"]).status_code == 401


def test_logout_needs_authentication(client: Any) -> None:
    response = client.post(f"{API}/auth/logout", json={})

    assert response.status_code == 401


def test_me_describes_the_caller_in_their_current_organization(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "approver", ["finance", "legal"])

    me = member.me()

    assert me["username"] == member.username
    assert me["email"] == member.email
    assert me["organization_id"] == admin.organization_id
    assert me["role"] == "approver"
    assert me["approver_roles"] == ["finance", "legal"]
    assert "approval:approve" in me["permissions"]
    assert "workflow:create" not in me["permissions"]
    assert {(o["id"], o["role"]) for o in me["organizations"]} == {
        (admin.organization_id, "approver"),
        (register_org(member), "admin"),
    }
    assert me["api_key_id"] is None


def register_org(caller: Any) -> str:
    """The caller's own organization (the one registration created)."""
    orgs = caller.get(f"{API}/organizations").json["organizations"]
    return next(o["id"] for o in orgs if o["role"] == "admin")


def test_me_needs_authentication(client: Any) -> None:
    response = client.get(f"{API}/auth/me")

    assert response.status_code == 401
    assert response.json["status"] == "Unauthorized"


def test_switching_organization_gives_a_session_there(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_viewer")
    home = register_org(member)

    response = member.post(f"{API}/auth/switch-organization", {"organization_id": home})

    assert response.status_code == 200
    me = client.get(f"{API}/auth/me", headers=bearer(response.json["access_token"]))
    assert me.json["organization_id"] == home
    assert me.json["role"] == "admin"


def test_switching_to_an_organization_one_is_not_in_is_a_404(client: Any) -> None:
    caller = register(client)
    stranger = register(client)

    response = caller.post(
        f"{API}/auth/switch-organization", {"organization_id": stranger.organization_id}
    )

    assert response.status_code == 404


def test_changing_the_password_ends_every_session_and_returns_a_new_one(client: Any) -> None:
    caller = register(client)
    other = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    ).json
    time.sleep(1.05)  # access tokens carry whole seconds

    response = caller.post(
        f"{API}/auth/change-password",
        {"current_password": caller.password, "new_password": "brand-new-secret-7"},
    )

    assert response.status_code == 200
    assert set(response.json) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert (
        client.get(f"{API}/auth/me", headers=bearer(response.json["access_token"])).status_code
        == 200
    )
    assert caller.get(f"{API}/auth/me").status_code == 401
    assert client.get(f"{API}/auth/me", headers=bearer(other["access_token"])).status_code == 401
    assert _refresh(client, caller.refresh_token).status_code == 401
    assert _refresh(client, other["refresh_token"]).status_code == 401
    old = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    )
    new = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": "brand-new-secret-7"}
    )
    assert old.status_code == 401
    assert new.status_code == 200


def test_changing_the_password_is_audited(client: Any, app: Any) -> None:
    caller = register(client)

    caller.post(
        f"{API}/auth/change-password",
        {"current_password": caller.password, "new_password": "brand-new-secret-7"},
    )

    with app.extensions["iw"].session_factory() as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.organization_id == caller.organization_id)
        ).all()
    assert "password_changed" in actions


def test_a_wrong_current_password_is_a_422_on_that_field(client: Any) -> None:
    caller = register(client)

    response = caller.post(
        f"{API}/auth/change-password",
        {"current_password": "not-my-password", "new_password": "brand-new-secret-7"},
    )

    assert response.status_code == 422
    assert "current_password" in response.json["errors"]
    assert caller.get(f"{API}/auth/me").status_code == 200  # still signed in


def test_guessing_the_current_password_is_throttled_like_sign_in(client: Any) -> None:
    caller = register(client)
    for _ in range(5):
        caller.post(
            f"{API}/auth/change-password",
            {"current_password": "guess-guess", "new_password": "brand-new-secret-7"},
        )

    response = caller.post(
        f"{API}/auth/change-password",
        {"current_password": caller.password, "new_password": "brand-new-secret-7"},
    )

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


def test_a_new_password_must_be_new_long_enough_and_not_the_username(client: Any) -> None:
    caller = register(client)

    same = caller.post(
        f"{API}/auth/change-password",
        {"current_password": caller.password, "new_password": caller.password},
    )
    short = caller.post(
        f"{API}/auth/change-password", {"current_password": caller.password, "new_password": "x"}
    )
    username = caller.post(
        f"{API}/auth/change-password",
        {"current_password": caller.password, "new_password": caller.username},
    )

    for response in (same, short, username):
        assert response.status_code == 422
        assert "new_password" in response.json["errors"]
