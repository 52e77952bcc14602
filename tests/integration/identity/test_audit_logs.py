"""GET /audit-logs and /audit-logs/{id}."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.support import API, add_member, create_api_key, register


def _entries(caller: Any, **query: Any) -> Any:
    return caller.get(f"{API}/audit-logs?{urlencode(query)}")


def test_the_log_lists_the_organizations_changes_newest_first(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_viewer")
    create_api_key(admin, ["workflow:read"])

    response = _entries(admin)

    assert response.status_code == 200
    body = response.json
    assert body["page"] == 1
    assert body["page_size"] == 20
    assert body["total"] == len(body["audit_logs"])
    actions = [e["action"] for e in body["audit_logs"]]
    assert actions[0] == "api_key_created"
    assert actions.index("member_added") < actions.index("login_success")
    assert {"user_registered", "organization_created"} <= set(actions)
    stamps = [e["created_at"] for e in body["audit_logs"]]
    assert stamps == sorted(stamps, reverse=True)
    entry = body["audit_logs"][0]
    assert set(entry) >= {
        "id",
        "organization_id",
        "actor_user_id",
        "actor_api_key_id",
        "action",
        "resource_type",
        "resource_id",
        "changes",
        "ip_address",
        "request_id",
        "created_at",
    }
    assert entry["actor_user_id"] == admin.user_id


def test_the_log_filters_by_action_resource_and_actor(client: Any) -> None:
    admin = register(client)
    member = register(client)
    add_member(admin, member, "workflow_manager")
    key = create_api_key(member, ["workflow:read"])
    admin_id, member_id = admin.user_id, member.user_id

    by_action = _entries(admin, action="member_added").json["audit_logs"]
    by_type = _entries(admin, resource_type="api_key").json["audit_logs"]
    by_id = _entries(admin, resource_id=key.id).json["audit_logs"]
    by_actor = _entries(admin, actor_user_id=member_id).json["audit_logs"]
    combined = _entries(admin, actor_user_id=admin_id, resource_type="api_key").json

    assert [e["action"] for e in by_action] == ["member_added"]
    assert by_action[0]["changes"]["username"] == member.username
    assert [e["action"] for e in by_type] == ["api_key_created"]
    assert [e["resource_id"] for e in by_id] == [key.id]
    assert {e["actor_user_id"] for e in by_actor} == {member_id}
    assert "api_key_created" in {e["action"] for e in by_actor}
    assert combined["total"] == 0


def test_the_log_filters_by_time_range(client: Any) -> None:
    admin = register(client)
    now = datetime.now(UTC)

    future = _entries(admin, since=(now + timedelta(hours=1)).isoformat()).json
    past = _entries(admin, until=(now - timedelta(hours=1)).isoformat()).json
    around = _entries(
        admin,
        since=(now - timedelta(hours=1)).isoformat(),
        until=(now + timedelta(hours=1)).isoformat(),
    ).json

    assert future["total"] == past["total"] == 0
    assert around["total"] > 0


def test_bad_filters_are_a_422(client: Any) -> None:
    admin = register(client)
    now = datetime.now(UTC)

    bad_date = _entries(admin, since="yesterday")
    bad_actor = _entries(admin, actor_user_id="me")
    inverted = _entries(admin, since=now.isoformat(), until=(now - timedelta(hours=1)).isoformat())

    assert bad_date.status_code == bad_actor.status_code == inverted.status_code == 422
    assert "since" in bad_date.json["errors"]


def test_the_log_is_paginated(client: Any) -> None:
    admin = register(client)
    for _ in range(3):
        create_api_key(admin, ["workflow:read"])

    first = _entries(admin, page=1, page_size=2).json
    second = _entries(admin, page=2, page_size=2).json

    assert len(first["audit_logs"]) == 2
    assert first["total"] == second["total"]
    assert {e["id"] for e in first["audit_logs"]}.isdisjoint(e["id"] for e in second["audit_logs"])


def test_one_entry_can_be_read_by_id(client: Any) -> None:
    admin = register(client)
    listed = _entries(admin).json["audit_logs"][0]

    response = admin.get(f"{API}/audit-logs/{listed['id']}")

    assert response.status_code == 200
    assert response.json == listed


def test_an_unknown_entry_is_a_404(client: Any) -> None:
    admin = register(client)

    response = admin.get(f"{API}/audit-logs/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404


def test_changes_made_with_an_api_key_name_the_key(client: Any) -> None:
    admin = register(client)
    key = create_api_key(admin, ["apikey:create", "audit:read"])
    child = key.post(f"{API}/auth/api-keys", {"name": "child", "scopes": ["audit:read"]}).json

    entries = _entries(key, resource_id=child["id"]).json["audit_logs"]

    assert entries[0]["actor_api_key_id"] == key.id
    assert entries[0]["actor_user_id"] == admin.user_id
