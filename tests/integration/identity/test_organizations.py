"""Organizations and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models.business import AuditLog
from models.identity import Organization
from tests.support import API, add_member, bearer, register


def _org(caller: Any) -> str:
    return f"{API}/organizations/{caller.organization_id}"


def _actions(app: Any, organization_id: str) -> list[str]:
    with app.extensions["iw"].session_factory() as session:
        return list(
            session.scalars(
                select(AuditLog.action).where(AuditLog.organization_id == organization_id)
            )
        )


def test_listing_organizations_shows_each_with_the_callers_role(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "agent")

    response = member.get(f"{API}/organizations")

    assert response.status_code == 200
    assert response.json["total"] == 2
    roles = {o["id"]: o["role"] for o in response.json["organizations"]}
    assert roles[admin.organization_id] == "agent"
    assert sorted(roles.values()) == ["admin", "agent"]


def test_creating_an_organization_makes_the_caller_its_admin(client: Any, app: Any) -> None:
    caller = register(client)

    response = caller.post(f"{API}/organizations", {"name": "Acme Ltd", "description": "Tools"})

    assert response.status_code == 201
    created = response.json
    assert created["name"] == "Acme Ltd"
    assert created["description"] == "Tools"
    assert created["role"] == "admin"
    assert created["slug"].startswith("acme-ltd-")
    caller.switch(created["id"])
    assert caller.me()["role"] == "admin"
    assert _actions(app, created["id"]) == ["organization_created"]


def test_an_organization_needs_a_name(client: Any) -> None:
    caller = register(client)

    response = caller.post(f"{API}/organizations", {"description": "nameless"})

    assert response.status_code == 422
    assert "name" in response.json["errors"]


def test_reading_the_current_organization(client: Any) -> None:
    caller = register(client)

    response = caller.get(_org(caller))

    assert response.status_code == 200
    assert response.json["id"] == caller.organization_id
    assert response.json["role"] == "admin"


def test_another_organization_of_ones_own_is_a_404_until_switched_to(client: Any) -> None:
    caller = register(client)
    other = caller.post(f"{API}/organizations", {"name": "Second"}).json["id"]

    assert caller.get(f"{API}/organizations/{other}").status_code == 404
    caller.switch(other)
    assert caller.get(f"{API}/organizations/{other}").status_code == 200


def test_updating_the_organization_is_audited_with_the_change(client: Any, app: Any) -> None:
    caller = register(client)

    response = caller.put(_org(caller), {"name": "Renamed", "description": "New words"})

    assert response.status_code == 200
    assert response.json["name"] == "Renamed"
    assert response.json["description"] == "New words"
    with app.extensions["iw"].session_factory() as session:
        entry = session.scalars(
            select(AuditLog).where(
                AuditLog.organization_id == caller.organization_id,
                AuditLog.action == "organization_updated",
            )
        ).one()
    assert entry.changes["name"]["to"] == "Renamed"


def test_an_empty_update_is_a_422(client: Any) -> None:
    caller = register(client)

    response = caller.put(_org(caller), {})

    assert response.status_code == 422


def test_deleting_the_organization_removes_it_and_ends_its_sessions(client: Any, app: Any) -> None:
    admin = register(client)
    extra = admin.post(f"{API}/organizations", {"name": "Short-lived"}).json["id"]
    admin.switch(extra)
    member = register(client)
    add_member(admin, member, "workflow_viewer")

    response = admin.delete(f"{API}/organizations/{extra}")

    assert response.status_code == 204
    with app.extensions["iw"].session_factory() as session:
        assert session.get(Organization, extra) is None
        kept = session.scalars(
            select(AuditLog).where(
                AuditLog.action == "organization_deleted", AuditLog.resource_id == extra
            )
        ).one()
    assert kept.organization_id is None
    assert admin.get(f"{API}/auth/me").status_code == 401
    assert member.get(f"{API}/auth/me").status_code == 401
    relogin = client.post(
        f"{API}/auth/login", json={"username": member.username, "password": member.password}
    )
    assert relogin.status_code == 200  # back in their own organization


def test_a_user_left_without_any_organization_gets_a_new_one_at_sign_in(client: Any) -> None:
    caller = register(client)

    assert caller.delete(_org(caller)).status_code == 204
    relogin = client.post(
        f"{API}/auth/login", json={"username": caller.username, "password": caller.password}
    )

    assert relogin.status_code == 200
    me = client.get(f"{API}/auth/me", headers=bearer(relogin.json["access_token"])).json
    assert me["role"] == "admin"
    assert me["organization_id"] != caller.organization_id


def test_adding_a_member_by_username_or_email(client: Any, app: Any) -> None:
    admin = register(client)
    by_name = register(client)
    by_email = register(client)

    first = admin.post(
        f"{_org(admin)}/members",
        {"username": by_name.username.upper(), "role": "approver", "approver_roles": ["ops"]},
    )
    second = admin.post(f"{_org(admin)}/members", {"email": by_email.email, "role": "agent"})

    assert first.status_code == 201
    assert first.json["username"] == by_name.username
    assert first.json["role"] == "approver"
    assert first.json["approver_roles"] == ["ops"]
    assert second.status_code == 201
    assert second.json["email"] == by_email.email
    assert second.json["approver_roles"] == []
    assert _actions(app, admin.organization_id).count("member_added") == 2


def test_approval_groups_are_deduplicated(client: Any) -> None:
    admin = register(client)
    member = register(client)

    response = admin.post(
        f"{_org(admin)}/members",
        {"username": member.username, "role": "approver", "approver_roles": ["a", "b", "a"]},
    )

    assert response.json["approver_roles"] == ["a", "b"]


def test_adding_an_unknown_user_is_a_404(client: Any) -> None:
    admin = register(client)

    response = admin.post(
        f"{_org(admin)}/members", {"username": "nobody-at-all", "role": "workflow_viewer"}
    )

    assert response.status_code == 404


def test_adding_a_member_twice_is_a_conflict(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_viewer")

    response = admin.post(
        f"{_org(admin)}/members", {"username": member.username, "role": "approver"}
    )

    assert response.status_code == 409


def test_an_unknown_role_is_a_422(client: Any) -> None:
    admin = register(client)
    member = register(client)

    response = admin.post(f"{_org(admin)}/members", {"username": member.username, "role": "god"})

    assert response.status_code == 422
    assert "role" in response.json["errors"]


def test_a_member_is_named_by_exactly_one_of_username_or_email(client: Any) -> None:
    admin = register(client)
    member = register(client)

    neither = admin.post(f"{_org(admin)}/members", {"role": "agent"})
    both = admin.post(
        f"{_org(admin)}/members",
        {"username": member.username, "email": member.email, "role": "agent"},
    )

    assert neither.status_code == both.status_code == 422


def test_listing_members_shows_user_role_and_groups(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "approver", ["finance"])

    response = admin.get(f"{_org(admin)}/members")

    assert response.status_code == 200
    assert response.json["total"] == 2
    members = {m["username"]: m for m in response.json["members"]}
    assert members[admin.username]["role"] == "admin"
    assert members[member.username]["role"] == "approver"
    assert members[member.username]["approver_roles"] == ["finance"]
    assert members[member.username]["email"] == member.email
    assert set(members[member.username]) >= {"user_id", "first_name", "last_name", "created_at"}


def test_changing_a_members_role_and_groups(client: Any, app: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_viewer")

    response = admin.put(
        f"{_org(admin)}/members/{member.user_id}",
        {"role": "approver", "approver_roles": ["legal"]},
    )

    assert response.status_code == 200
    assert response.json["role"] == "approver"
    assert response.json["approver_roles"] == ["legal"]
    assert member.me()["role"] == "approver"  # takes effect on the member's next request
    with app.extensions["iw"].session_factory() as session:
        entry = session.scalars(
            select(AuditLog).where(
                AuditLog.organization_id == admin.organization_id,
                AuditLog.action == "member_role_changed",
            )
        ).one()
    assert entry.changes["role"] == {"from": "workflow_viewer", "to": "approver"}
    assert entry.changes["approver_roles"] == {"from": [], "to": ["legal"]}


def test_changing_a_non_member_is_a_404(client: Any) -> None:
    admin = register(client)
    stranger = register(client)

    response = admin.put(f"{_org(admin)}/members/{stranger.user_id}", {"role": "agent"})

    assert response.status_code == 404


def test_the_last_admin_cannot_be_demoted_or_removed(client: Any) -> None:
    admin = register(client)
    admin_id = admin.user_id

    demote = admin.put(f"{_org(admin)}/members/{admin_id}", {"role": "workflow_manager"})
    remove = admin.delete(f"{_org(admin)}/members/{admin_id}")

    assert demote.status_code == 409
    assert remove.status_code == 409
    assert admin.me()["role"] == "admin"


def test_an_admin_can_step_down_once_there_is_another(client: Any) -> None:
    admin = register(client)
    second = register(client)
    add_member(admin, second, "admin")

    response = admin.put(f"{_org(admin)}/members/{admin.user_id}", {"role": "workflow_viewer"})

    assert response.status_code == 200
    assert (
        second.put(f"{_org(second)}/members/{second.user_id}", {"role": "agent"}).status_code == 409
    )


def test_removing_a_member(client: Any, app: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_viewer")
    member_id = member.user_id

    response = admin.delete(f"{_org(admin)}/members/{member_id}")

    assert response.status_code == 204
    listed = admin.get(f"{_org(admin)}/members").json["members"]
    assert [m["username"] for m in listed] == [admin.username]
    assert "member_removed" in _actions(app, admin.organization_id)
    assert admin.delete(f"{_org(admin)}/members/{member_id}").status_code == 404
