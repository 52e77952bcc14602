"""Rules: CRUD, validation of their conditions, dry evaluation, access and isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.workflows.builders import API, audit_actions, create, wrapped
from tests.support import add_member, register

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(client: Any) -> Any:
    return register(client)


def rule_body(rule_id: str = "big_order", **overrides: Any) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "name": "Big order",
        "description": "Large orders from new customers",
        "conditions": [
            {"field": "order.total", "operator": "gte", "value": 1000},
            {
                "or": [
                    {"field": "customer.age_days", "operator": "<", "value": 30},
                    {"not": {"field": "customer.verified", "operator": "eq", "value": True}},
                ]
            },
        ],
        **overrides,
    }


def create_rule(caller: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = caller.post(f"{API}/rules", body)
    assert response.status_code == 201, response.json
    return response.json


def test_a_created_rule_has_the_documented_shape(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    assert set(rule) == {
        "id",
        "rule_id",
        "name",
        "description",
        "conditions",
        "enabled",
        "created_at",
        "updated_at",
    }
    assert rule["enabled"] is True
    assert rule["conditions"] == rule_body()["conditions"]
    assert admin.get(f"{API}/rules/{rule['id']}").json == rule


def test_rules_are_listed_newest_first_in_a_page_envelope(admin: Any) -> None:
    create_rule(admin, rule_body("first", name="First"))
    create_rule(admin, rule_body("second", name="Second", enabled=False))
    body = admin.get(f"{API}/rules").json
    assert set(body) == {"rules", "total", "page", "page_size"}
    assert [rule["rule_id"] for rule in body["rules"]] == ["second", "first"]
    assert [r["rule_id"] for r in admin.get(f"{API}/rules?enabled=false").json["rules"]] == [
        "second"
    ]
    assert [r["rule_id"] for r in admin.get(f"{API}/rules?search=FIR").json["rules"]] == ["first"]
    assert admin.get(f"{API}/rules?page_size=101").status_code == 422


def test_a_duplicate_rule_id_is_a_conflict(client: Any, admin: Any) -> None:
    create_rule(admin, rule_body())
    response = admin.post(f"{API}/rules", rule_body(name="Again"))
    assert response.status_code == 409
    assert response.json["errors"] == {"rule_id": ["already exists"]}
    create_rule(register(client), rule_body())  # another organization may use it


def test_invalid_conditions_are_reported_at_their_paths(admin: Any) -> None:
    body = rule_body(
        conditions=[
            {"field": "order.total", "operator": "about", "value": 1},
            {"and": [{"field": "a", "operator": "eq", "value": 1}, {"operator": "eq", "value": 2}]},
            {"field": "email", "operator": "regex", "value": "([a-z"},
            {"or": []},
            "not a condition",
            {"not": {"field": "x", "operator": "in"}},
        ]
    )
    response = admin.post(f"{API}/rules", body)
    assert response.status_code == 422
    errors = response.json["errors"]
    assert set(errors) == {
        "conditions[0].operator",
        "conditions[1].and[1].field",
        "conditions[2].value",
        "conditions[3].or",
        "conditions[4]",
        "conditions[5].not.value",
    }
    assert admin.get(f"{API}/rules").json["total"] == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rule_id": "has spaces"}, "rule_id"),
        ({"rule_id": ""}, "rule_id"),
        ({"name": ""}, "name"),
        ({"conditions": []}, "conditions"),
        ({"conditions": {"field": "a"}}, "conditions"),
    ],
)
def test_malformed_rule_fields_are_422(admin: Any, overrides: dict[str, Any], field: str) -> None:
    response = admin.post(f"{API}/rules", rule_body(**overrides))
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_update_replaces_the_rule_but_not_its_rule_id(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    replacement = {
        "name": "Huge order",
        "conditions": [{"field": "order.total", "operator": "gt", "value": 5000}],
        "enabled": False,
    }
    response = admin.put(f"{API}/rules/{rule['id']}", replacement)
    assert response.status_code == 200, response.json
    updated = response.json
    assert updated["rule_id"] == "big_order"
    assert updated["name"] == "Huge order"
    assert updated["description"] is None
    assert updated["conditions"] == replacement["conditions"]
    assert updated["enabled"] is False

    renamed = admin.put(f"{API}/rules/{rule['id']}", {**replacement, "rule_id": "other"})
    assert renamed.status_code == 422
    assert "rule_id" in renamed.json["errors"]
    invalid = admin.put(
        f"{API}/rules/{rule['id']}",
        {**replacement, "conditions": [{"field": "a", "operator": "??", "value": 1}]},
    )
    assert invalid.status_code == 422
    assert "conditions[0].operator" in invalid.json["errors"]


def test_enable_and_disable_are_idempotent(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    for action, expected in (("disable", False), ("disable", False), ("enable", True)):
        response = admin.post(f"{API}/rules/{rule['id']}/{action}")
        assert response.status_code == 200, response.json
        assert response.json["enabled"] is expected
    response = admin.post(f"{API}/rules/{rule['id']}/enable")
    assert response.json["enabled"] is True


def test_delete_removes_the_rule(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    assert admin.delete(f"{API}/rules/{rule['id']}").status_code == 204
    assert admin.get(f"{API}/rules/{rule['id']}").status_code == 404
    assert admin.delete(f"{API}/rules/{rule['id']}").status_code == 404


def test_a_rule_used_by_an_enabled_workflow_cannot_be_deleted(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    body = wrapped(enabled=True)
    body["definition"]["steps"][0].pop("condition")
    body["definition"]["steps"][0]["rule_id"] = "big_order"
    workflow = create(admin, body)

    response = admin.delete(f"{API}/rules/{rule['id']}")
    assert response.status_code == 409
    assert response.json["errors"] == {"workflows": ["order_check@1.0.0"]}

    admin.post(f"{API}/workflows/{workflow['id']}/disable")
    assert admin.delete(f"{API}/rules/{rule['id']}").status_code == 204


def test_the_test_endpoint_evaluates_every_condition_against_a_payload(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    payload = {"order": {"total": "1500"}, "customer": {"age_days": 400, "verified": False}}
    response = admin.post(f"{API}/rules/{rule['id']}/test", {"payload": payload})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["matched"] is True
    assert [result["matched"] for result in body["results"]] == [True, True]
    first = body["results"][0]
    assert first["index"] == 0
    assert first["condition"] == rule["conditions"][0]
    assert first["decisions"][0]["actual"] == "1500"
    assert first["decisions"][0]["result"] is True

    payload["customer"]["verified"] = True
    body = admin.post(f"{API}/rules/{rule['id']}/test", {"payload": payload}).json
    assert body["matched"] is False
    assert [result["matched"] for result in body["results"]] == [True, False]


def test_a_missing_field_makes_a_condition_false_not_an_error(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    body = admin.post(f"{API}/rules/{rule['id']}/test", {"payload": {}}).json
    assert body["matched"] is False
    assert body["results"][0]["error"] is None


def test_the_test_endpoint_resolves_nested_rules_and_templates(admin: Any) -> None:
    create_rule(
        admin, rule_body("vip", conditions=[{"field": "tier", "operator": "in", "value": ["gold"]}])
    )
    rule = create_rule(
        admin,
        rule_body(
            "vip_same_country",
            conditions=[
                {"rule_id": "vip"},
                {"field": "ship.country", "operator": "eq", "value": "{{ bill.country }}"},
            ],
        ),
    )
    payload = {"tier": "gold", "ship": {"country": "FR"}, "bill": {"country": "FR"}}
    body = admin.post(f"{API}/rules/{rule['id']}/test", {"payload": payload}).json
    assert body["matched"] is True

    dangling = create_rule(admin, rule_body("dangling", conditions=[{"rule_id": "nope"}]))
    body = admin.post(f"{API}/rules/{dangling['id']}/test", {"payload": payload}).json
    assert body["matched"] is False
    assert "nope" in body["results"][0]["error"]


def test_the_test_endpoint_needs_a_payload_object(admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    assert admin.post(f"{API}/rules/{rule['id']}/test", {}).status_code == 422
    assert admin.post(f"{API}/rules/{rule['id']}/test", {"payload": [1]}).status_code == 422


def test_a_viewer_can_read_and_test_rules_but_not_change_them(client: Any, admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")
    row = f"{API}/rules/{rule['id']}"
    assert viewer.get(f"{API}/rules").json["total"] == 1
    assert viewer.get(row).status_code == 200
    assert viewer.post(f"{row}/test", {"payload": {}}).status_code == 200
    refused = [
        viewer.post(f"{API}/rules", rule_body("other")),
        viewer.put(row, rule_body()),
        viewer.post(f"{row}/enable"),
        viewer.post(f"{row}/disable"),
        viewer.delete(row),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)


def test_an_agent_cannot_read_rules(client: Any, admin: Any) -> None:
    agent = register(client)
    add_member(admin, agent, "agent")
    assert agent.get(f"{API}/rules").status_code == 403


def test_another_organization_gets_404_on_every_rule_id(client: Any, admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    stranger = register(client)
    row = f"{API}/rules/{rule['id']}"
    assert stranger.get(f"{API}/rules").json["total"] == 0
    attempts = [
        stranger.get(row),
        stranger.put(row, rule_body()),
        stranger.delete(row),
        stranger.post(f"{row}/enable"),
        stranger.post(f"{row}/disable"),
        stranger.post(f"{row}/test", {"payload": {}}),
    ]
    assert [response.status_code for response in attempts] == [404] * len(attempts)
    assert stranger.get(f"{API}/rules/not-a-uuid").status_code == 404
    assert admin.get(row).json == rule


def test_every_rule_change_is_audited(app: Any, admin: Any) -> None:
    rule = create_rule(admin, rule_body())
    admin.put(f"{API}/rules/{rule['id']}", rule_body(name="Renamed"))
    admin.post(f"{API}/rules/{rule['id']}/disable")
    admin.post(f"{API}/rules/{rule['id']}/enable")
    admin.delete(f"{API}/rules/{rule['id']}")
    assert audit_actions(app, admin.organization_id, rule["id"]) == [
        "rule_created",
        "rule_updated",
        "rule_disabled",
        "rule_enabled",
        "rule_deleted",
    ]
