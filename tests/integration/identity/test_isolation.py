"""Tenancy: another organization's ids answer 404 and its data never shows in lists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import API, add_member, create_api_key, register


@pytest.fixture(scope="module")
def two_organizations(app: Any) -> dict[str, Any]:
    client = app.test_client()
    first = register(client)
    first_member = register(client)
    add_member(first, first_member, "approver", ["secret-group"])
    first_key = create_api_key(first, ["workflow:read"], name="first-org-key")
    first_entry = first.get(f"{API}/audit-logs").json["audit_logs"][0]["id"]
    second = register(client)
    second_key = create_api_key(second)
    return {
        "first": first,
        "first_member_id": first_member.user_id,
        "first_key": first_key,
        "first_entry": first_entry,
        "second": second,
        "second_key": second_key,
    }


ID_BASED = [
    ("get", "/organizations/{org}"),
    ("put", "/organizations/{org}"),
    ("delete", "/organizations/{org}"),
    ("get", "/organizations/{org}/members"),
    ("post", "/organizations/{org}/members"),
    ("put", "/organizations/{org}/members/{member}"),
    ("delete", "/organizations/{org}/members/{member}"),
    ("delete", "/auth/api-keys/{key}"),
    ("get", "/audit-logs/{entry}"),
]
BODIES = {
    ("put", "/organizations/{org}"): {"name": "hijacked"},
    ("post", "/organizations/{org}/members"): {"username": "whoever", "role": "admin"},
    ("put", "/organizations/{org}/members/{member}"): {"role": "agent"},
}


@pytest.mark.parametrize("credential", ["bearer", "api_key"])
@pytest.mark.parametrize(("method", "path"), ID_BASED)
def test_another_organizations_ids_are_not_found(
    two_organizations: dict[str, Any], method: str, path: str, credential: str
) -> None:
    env = two_organizations
    caller = env["second"] if credential == "bearer" else env["second_key"]
    url = API + path.format(
        org=env["first"].organization_id,
        member=env["first_member_id"],
        key=env["first_key"].id,
        entry=env["first_entry"],
    )
    body = BODIES.get((method, path))

    response = getattr(caller, method)(url, **({"json": body} if body is not None else {}))

    assert response.status_code == 404
    assert response.json["code"] == 404


def test_the_first_organization_is_untouched_by_the_attempts(
    two_organizations: dict[str, Any],
) -> None:
    env = two_organizations
    first = env["first"]

    organization = first.get(f"{API}/organizations/{first.organization_id}")
    members = first.get(f"{API}/organizations/{first.organization_id}/members")

    assert organization.status_code == 200
    assert organization.json["name"] != "hijacked"
    assert members.json["total"] == 2
    assert env["first_key"].get(f"{API}/auth/me").status_code == 200


def test_lists_show_nothing_of_another_organization(two_organizations: dict[str, Any]) -> None:
    env = two_organizations
    second, first = env["second"], env["first"]

    keys = second.get(f"{API}/auth/api-keys").json
    audit = second.get(f"{API}/audit-logs?page_size=100").json
    organizations = second.get(f"{API}/organizations").json
    members = second.get(f"{API}/organizations/{second.organization_id}/members").json

    assert [k["id"] for k in keys["api_keys"]] == [env["second_key"].id]
    assert all(e["organization_id"] == second.organization_id for e in audit["audit_logs"])
    assert first.organization_id not in {o["id"] for o in organizations["organizations"]}
    assert [m["username"] for m in members["members"]] == [second.username]
    for body in (keys, audit, organizations, members):
        text = str(body)
        assert first.organization_id not in text
        assert "first-org-key" not in text
        assert "secret-group" not in text


def test_an_api_key_sees_only_its_own_organization(client: Any) -> None:
    caller = register(client)
    other = caller.post(f"{API}/organizations", {"name": "Second home"}).json["id"]
    key = create_api_key(caller, ["organization:read"])

    listed = key.get(f"{API}/organizations").json
    me = key.get(f"{API}/auth/me").json

    assert [o["id"] for o in listed["organizations"]] == [caller.organization_id]
    assert [o["id"] for o in me["organizations"]] == [caller.organization_id]
    assert key.get(f"{API}/organizations/{other}").status_code == 404
