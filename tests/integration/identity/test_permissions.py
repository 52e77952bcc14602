"""Every identity endpoint checks its permission: a role without it gets 403."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import API, Caller, add_member, create_api_key, register

ROLES = ("workflow_manager", "workflow_viewer", "approver", "agent")


@pytest.fixture(scope="module")
def team(app: Any) -> dict[str, Any]:
    """One organization: its admin, a member of every other role, and ids to act on."""
    client = app.test_client()
    admin = register(client)
    members: dict[str, Caller] = {"admin": admin}
    for role in ROLES:
        members[role] = register(client)
        add_member(admin, members[role], role)
    key = create_api_key(admin, ["workflow:read"])
    entry = admin.get(f"{API}/audit-logs").json["audit_logs"][0]
    return {
        "callers": members,
        "org": admin.organization_id,
        "member": members["workflow_viewer"].user_id,
        "key": key.id,
        "entry": entry["id"],
    }


# (method, path, permission): every identity endpoint guarded by a permission.
GUARDED = [
    ("get", "/auth/api-keys", "apikey:read"),
    ("post", "/auth/api-keys", "apikey:create"),
    ("delete", "/auth/api-keys/{key}", "apikey:revoke"),
    ("get", "/organizations/{org}", "organization:read"),
    ("put", "/organizations/{org}", "organization:update"),
    ("delete", "/organizations/{org}", "organization:delete"),
    ("get", "/organizations/{org}/members", "organization:read"),
    ("post", "/organizations/{org}/members", "organization:members"),
    ("put", "/organizations/{org}/members/{member}", "organization:members"),
    ("delete", "/organizations/{org}/members/{member}", "organization:members"),
    ("get", "/audit-logs", "audit:read"),
    ("get", "/audit-logs/{entry}", "audit:read"),
]


def _lacking() -> list[Any]:
    from models.permission import permissions_of

    cases = []
    for role in ROLES:
        for method, path, permission in GUARDED:
            if permission not in permissions_of(role):
                cases.append(
                    pytest.param(role, method, path, permission, id=f"{role}-{method}-{path}")
                )
    return cases


@pytest.mark.parametrize(("role", "method", "path", "permission"), _lacking())
def test_a_role_without_the_permission_gets_403(
    team: dict[str, Any], role: str, method: str, path: str, permission: str
) -> None:
    caller = team["callers"][role]
    url = API + path.format(**team)

    response = getattr(caller, method)(url, **({"json": {}} if method in {"post", "put"} else {}))

    assert response.status_code == 403
    assert response.json["code"] == 403
    assert response.json["status"] == "Forbidden"
    assert response.json["message"] == f"Missing permission: {permission}"


def test_the_matrix_covers_the_roles_named_in_the_brief() -> None:
    lacking = {(c.values[0], c.values[1], c.values[2]) for c in _lacking()}

    assert ("workflow_viewer", "post", "/auth/api-keys") in lacking
    assert ("workflow_viewer", "post", "/organizations/{org}/members") in lacking
    assert ("workflow_viewer", "get", "/audit-logs") in lacking
    assert ("approver", "get", "/auth/api-keys") in lacking
    assert ("agent", "get", "/organizations/{org}") in lacking


def test_a_workflow_manager_may_create_keys_and_read_the_audit_log(team: dict[str, Any]) -> None:
    manager = team["callers"]["workflow_manager"]

    key = manager.post(f"{API}/auth/api-keys", {"name": "mgr", "scopes": ["workflow:read"]})
    audit = manager.get(f"{API}/audit-logs")
    members = manager.get(f"{API}/organizations/{team['org']}/members")

    assert key.status_code == 201
    assert audit.status_code == 200
    assert members.status_code == 200


def test_an_agent_may_list_the_keys(team: dict[str, Any]) -> None:
    response = team["callers"]["agent"].get(f"{API}/auth/api-keys")

    assert response.status_code == 200


def test_every_role_may_read_itself_and_list_its_organizations(team: dict[str, Any]) -> None:
    for caller in team["callers"].values():
        assert caller.get(f"{API}/auth/me").status_code == 200
        assert caller.get(f"{API}/organizations").status_code == 200


def test_any_signed_in_user_may_create_an_organization(team: dict[str, Any]) -> None:
    response = team["callers"]["agent"].post(f"{API}/organizations", {"name": "Agent's own"})

    assert response.status_code == 201
    assert response.json["role"] == "admin"


def test_an_unauthenticated_caller_gets_401_everywhere(client: Any, team: dict[str, Any]) -> None:
    for method, path, _ in [*GUARDED, ("get", "/auth/me", ""), ("post", "/organizations", "")]:
        response = getattr(client, method)(API + path.format(**team), json={})
        assert response.status_code == 401, (method, path)
