"""API keys: created scoped and shown once, listed without the key, used, revoked, expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from api.auth.tokens import hash_token
from models.business import AuditLog
from models.identity import ApiKey
from models.permission import permissions_of
from tests.support import API, add_member, create_api_key, register, unique


def test_creating_a_key_shows_it_once_with_its_prefix(client: Any, app: Any) -> None:
    caller = register(client)

    response = caller.post(
        f"{API}/auth/api-keys", {"name": "ci", "scopes": ["workflow:read", "event:create"]}
    )

    assert response.status_code == 201
    body = response.json
    assert body["api_key"].startswith("iwk_")
    assert body["api_key"].startswith(body["key_prefix"])
    assert len(body["key_prefix"]) < len(body["api_key"])
    assert body["name"] == "ci"
    assert body["scopes"] == ["event:create", "workflow:read"]
    assert body["expires_at"] is None
    assert body["created_at"]
    with app.extensions["iw"].session_factory() as session:
        stored = session.get(ApiKey, body["id"])
        assert stored is not None
        assert stored.key_hash == hash_token(body["api_key"])
        assert body["api_key"] not in stored.key_hash


def test_a_key_without_scopes_holds_its_creators_permissions(client: Any) -> None:
    caller = register(client)

    response = caller.post(f"{API}/auth/api-keys", {"name": "all"})

    assert response.status_code == 201
    assert set(response.json["scopes"]) == permissions_of("admin")


def test_a_key_cannot_hold_permissions_its_creator_lacks(client: Any) -> None:
    admin = register(client)
    manager = register(client)
    add_member(admin, manager, "workflow_manager")

    response = manager.post(
        f"{API}/auth/api-keys",
        {"name": "sneaky", "scopes": ["workflow:read", "audit:read", "organization:delete"]},
    )

    assert response.status_code == 422
    assert response.json["errors"]["scopes"] == ["Not held by you: organization:delete"]


def test_unknown_scopes_are_a_422(client: Any) -> None:
    caller = register(client)

    response = caller.post(f"{API}/auth/api-keys", {"name": "x", "scopes": ["root:everything"]})

    assert response.status_code == 422
    assert "root:everything" in response.json["errors"]["scopes"][0]


def test_expiry_is_in_days_or_at_a_time_in_the_future(client: Any) -> None:
    caller = register(client)
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=2)).isoformat()

    in_days = caller.post(f"{API}/auth/api-keys", {"name": "a", "expires_in_days": 30})
    at = caller.post(f"{API}/auth/api-keys", {"name": "b", "expires_at": soon})
    both = caller.post(
        f"{API}/auth/api-keys", {"name": "c", "expires_at": soon, "expires_in_days": 3}
    )
    in_the_past = caller.post(f"{API}/auth/api-keys", {"name": "d", "expires_at": past})
    zero_days = caller.post(f"{API}/auth/api-keys", {"name": "e", "expires_in_days": 0})

    assert in_days.status_code == 201
    expires = datetime.fromisoformat(in_days.json["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert at.status_code == 201
    assert datetime.fromisoformat(at.json["expires_at"]) == datetime.fromisoformat(soon)
    for response in (both, in_the_past):
        assert response.status_code == 422
        assert "expires_at" in response.json["errors"]
    assert zero_days.status_code == 422
    assert "expires_in_days" in zero_days.json["errors"]


def test_a_key_authenticates_with_its_scopes_and_records_its_use(client: Any, app: Any) -> None:
    caller = register(client)
    key = create_api_key(caller, ["workflow:read", "apikey:read"])

    me = key.get(f"{API}/auth/me")

    assert me.status_code == 200
    assert me.json["api_key_id"] == key.id
    assert me.json["organization_id"] == caller.organization_id
    assert me.json["permissions"] == ["apikey:read", "workflow:read"]
    listing = caller.get(f"{API}/auth/api-keys").json["api_keys"]
    assert next(k for k in listing if k["id"] == key.id)["last_used_at"] is not None


def test_key_scopes_limit_what_it_may_do(client: Any) -> None:
    caller = register(client)
    key = create_api_key(caller, ["workflow:read"])

    response = key.post(f"{API}/auth/api-keys", {"name": "child"})

    assert response.status_code == 403
    assert response.json["message"] == "Missing permission: apikey:create"


def test_a_key_never_exceeds_its_creators_current_role(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_manager")
    key = create_api_key(member, ["workflow:read", "apikey:create"])
    admin.put(
        f"{API}/organizations/{admin.organization_id}/members/{member.user_id}",
        {"role": "workflow_viewer"},
    )

    assert key.get(f"{API}/auth/me").json["permissions"] == ["workflow:read"]
    assert key.post(f"{API}/auth/api-keys", {"name": "x"}).status_code == 403


def test_a_key_with_key_scopes_can_only_create_narrower_keys(client: Any) -> None:
    caller = register(client)
    key = create_api_key(caller, ["apikey:create", "workflow:read"])

    wider = key.post(f"{API}/auth/api-keys", {"name": "w", "scopes": ["workflow:delete"]})
    default = key.post(f"{API}/auth/api-keys", {"name": "d"})

    assert wider.status_code == 422
    assert default.status_code == 201
    assert default.json["scopes"] == ["apikey:create", "workflow:read"]


def test_a_key_cannot_mint_user_sessions(client: Any) -> None:
    caller = register(client)
    key = create_api_key(caller)

    switch = key.post(
        f"{API}/auth/switch-organization", {"organization_id": caller.organization_id}
    )
    change = key.post(
        f"{API}/auth/change-password",
        {"current_password": caller.password, "new_password": "another-pass-1"},
    )
    logout = key.post(f"{API}/auth/logout")
    new_org = key.post(f"{API}/organizations", {"name": "from a key"})

    for response in (switch, change, logout, new_org):
        assert response.status_code == 403


def test_listing_keys_never_shows_a_key(client: Any) -> None:
    caller = register(client)
    key = create_api_key(caller, ["workflow:read"], name="listed")

    response = caller.get(f"{API}/auth/api-keys")

    assert response.status_code == 200
    assert response.json["total"] == 1
    assert response.json["page"] == 1
    assert response.json["page_size"] == 20
    (listed,) = response.json["api_keys"]
    assert listed["id"] == key.id
    assert listed["name"] == "listed"
    assert "api_key" not in listed
    assert key.api_key not in response.get_data(as_text=True)
    assert key.api_key.startswith(listed["key_prefix"])
    assert set(listed) >= {"last_used_at", "revoked_at", "expires_at", "created_at", "scopes"}


def test_keys_are_listed_newest_first_and_paginated(client: Any) -> None:
    caller = register(client)
    ids = [create_api_key(caller, ["workflow:read"]).id for _ in range(3)]

    first = caller.get(f"{API}/auth/api-keys?page=1&page_size=2").json
    second = caller.get(f"{API}/auth/api-keys?page=2&page_size=2").json

    assert first["total"] == second["total"] == 3
    assert [k["id"] for k in first["api_keys"] + second["api_keys"]] == ids[::-1]


def test_page_size_is_capped(client: Any) -> None:
    caller = register(client)

    response = caller.get(f"{API}/auth/api-keys?page_size=101")

    assert response.status_code == 422
    assert "page_size" in response.json["errors"]


def test_a_revoked_key_is_refused(client: Any, app: Any) -> None:
    caller = register(client)
    key = create_api_key(caller, ["workflow:read"])
    assert key.get(f"{API}/auth/me").status_code == 200

    response = caller.delete(f"{API}/auth/api-keys/{key.id}")

    assert response.status_code == 204
    refused = key.get(f"{API}/auth/me")
    assert refused.status_code == 401
    assert "revoked" in refused.json["message"]
    listed = caller.get(f"{API}/auth/api-keys").json["api_keys"][0]
    assert listed["revoked_at"] is not None
    assert caller.delete(f"{API}/auth/api-keys/{key.id}").status_code == 204  # idempotent
    with app.extensions["iw"].session_factory() as session:
        actions = session.scalars(
            select(AuditLog.action).where(
                AuditLog.organization_id == caller.organization_id,
                AuditLog.resource_id == key.id,
            )
        ).all()
    assert sorted(actions) == ["api_key_created", "api_key_revoked"]


def test_an_expired_key_is_refused(client: Any, app: Any) -> None:
    caller = register(client)
    key = create_api_key(caller, ["workflow:read"], expires_in_days=1)
    with app.extensions["iw"].session_factory() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()

    response = key.get(f"{API}/auth/me")

    assert response.status_code == 401
    assert "expired" in response.json["message"]


def test_revoking_an_unknown_key_is_a_404(client: Any) -> None:
    caller = register(client)

    response = caller.delete(f"{API}/auth/api-keys/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404


def test_a_key_name_is_required(client: Any) -> None:
    caller = register(client)

    response = caller.post(f"{API}/auth/api-keys", {"scopes": ["workflow:read"]})

    assert response.status_code == 422
    assert "name" in response.json["errors"]


def test_keys_of_a_removed_member_stop_working_for_good(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_manager")
    key = create_api_key(member, ["workflow:read"], name=unique("k"))
    member_id = member.user_id

    admin.delete(f"{API}/organizations/{admin.organization_id}/members/{member_id}")
    admin.post(
        f"{API}/organizations/{admin.organization_id}/members",
        {"username": member.username, "role": "workflow_manager"},
    )

    assert key.get(f"{API}/auth/me").status_code == 401
