"""Listing and filtering workflows; who may do what; organizations never see each other."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.workflows.builders import API, create, flat, wrapped
from tests.support import add_member, register

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(client: Any) -> Any:
    return register(client)


def listed(caller: Any, **query: Any) -> list[tuple[str, str]]:
    response = caller.get(f"{API}/workflows", query_string=query)
    assert response.status_code == 200, response.json
    return [(row["workflow_id"], row["version"]) for row in response.json["workflows"]]


def schedule_body(workflow_id: str) -> dict[str, Any]:
    body = wrapped(workflow_id, name="Nightly report", tags=["reports", "nightly"])
    body["definition"]["trigger"] = {"type": "schedule", "cron": "0 2 * * *"}
    return body


def test_the_list_is_a_page_envelope_newest_first(admin: Any) -> None:
    for index in range(3):
        create(admin, wrapped(f"workflow_{index}"))
    response = admin.get(f"{API}/workflows?page=1&page_size=2")
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"workflows", "total", "page", "page_size"}
    assert (body["total"], body["page"], body["page_size"]) == (3, 1, 2)
    assert [row["workflow_id"] for row in body["workflows"]] == ["workflow_2", "workflow_1"]
    second = admin.get(f"{API}/workflows?page=2&page_size=2").json
    assert [row["workflow_id"] for row in second["workflows"]] == ["workflow_0"]


@pytest.mark.parametrize(
    "query", ["page_size=101", "page_size=0", "page=0", "page=abc", "enabled=maybe"]
)
def test_out_of_range_paging_and_bad_filters_are_422(admin: Any, query: str) -> None:
    response = admin.get(f"{API}/workflows?{query}")
    assert response.status_code == 422
    assert response.json["code"] == 422


def test_page_size_100_is_allowed(admin: Any) -> None:
    assert admin.get(f"{API}/workflows?page_size=100").status_code == 200


def test_the_list_filters_by_search_tag_enabled_trigger_and_workflow_id(admin: Any) -> None:
    create(admin, wrapped("order_check", tags=["orders", "risk"], enabled=True))
    create(admin, flat("order_check", "2.0.0", tags=["orders"]))
    create(admin, schedule_body("nightly_report"))

    assert listed(admin, search="ORDER_C") == [("order_check", "2.0.0"), ("order_check", "1.0.0")]
    assert listed(admin, search="nightly rep") == [("nightly_report", "1.0.0")]
    assert listed(admin, search="%") == []
    assert listed(admin, tag="orders") == [("order_check", "2.0.0"), ("order_check", "1.0.0")]
    assert listed(admin, tag="orders,risk") == [("order_check", "1.0.0")]
    assert listed(admin, tag=["orders", "risk"]) == [("order_check", "1.0.0")]
    assert listed(admin, enabled="true") == [("order_check", "1.0.0")]
    assert len(listed(admin, enabled="false")) == 2
    assert listed(admin, trigger_type="schedule") == [("nightly_report", "1.0.0")]
    assert listed(admin, workflow_id="order_check", enabled="false") == [("order_check", "2.0.0")]


def test_latest_lists_the_newest_version_of_each_workflow(admin: Any) -> None:
    create(admin, wrapped("order_check", "1.0.0", enabled=True))
    create(admin, wrapped("nightly_report", "1.0.0"))
    create(admin, wrapped("order_check", "2.0.0"))
    assert listed(admin, latest="true") == [("order_check", "2.0.0"), ("nightly_report", "1.0.0")]
    assert listed(admin, latest="true", enabled="true") == [("order_check", "1.0.0")]
    body = admin.get(f"{API}/workflows?latest=true").json
    assert body["total"] == 2


def test_unauthenticated_calls_are_401(client: Any) -> None:
    response = client.get(f"{API}/workflows")
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert client.post(f"{API}/workflows", json=wrapped()).status_code == 401


def test_a_workflow_viewer_can_read_but_not_change(client: Any, admin: Any) -> None:
    created = create(admin, wrapped())
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")
    row = f"{API}/workflows/{created['id']}"

    assert viewer.get(f"{API}/workflows").json["total"] == 1
    assert viewer.get(row).status_code == 200
    assert viewer.get(f"{row}/versions").status_code == 200
    refused = [
        viewer.post(f"{API}/workflows", wrapped(version="2.0.0")),
        viewer.post(f"{API}/workflows/validate", wrapped()),
        viewer.put(row, wrapped(name="Renamed")),
        viewer.post(f"{row}/enable"),
        viewer.post(f"{row}/disable"),
        viewer.delete(row),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert refused[0].json["message"] == "Missing permission: workflow:create"
    assert admin.get(row).json == created


def test_an_agent_can_read_but_not_create(client: Any, admin: Any) -> None:
    created = create(admin, wrapped())
    agent = register(client)
    add_member(admin, agent, "agent")
    assert agent.get(f"{API}/workflows/{created['id']}").status_code == 200
    assert agent.post(f"{API}/workflows", wrapped(version="2.0.0")).status_code == 403


def test_a_workflow_manager_can_manage_workflows(client: Any, admin: Any) -> None:
    manager = register(client)
    add_member(admin, manager, "workflow_manager")
    created = create(manager, wrapped(enabled=True))
    row = f"{API}/workflows/{created['id']}"
    assert manager.put(row, wrapped(name="Renamed")).status_code == 200
    assert manager.post(f"{row}/disable").status_code == 200
    assert manager.delete(row).status_code == 204


def test_another_organization_sees_nothing_and_gets_404_on_every_id(
    client: Any, admin: Any
) -> None:
    created = create(admin, wrapped(enabled=True))
    stranger = register(client)
    row = f"{API}/workflows/{created['id']}"

    assert stranger.get(f"{API}/workflows").json["total"] == 0
    assert stranger.get(f"{API}/workflows?latest=true").json["total"] == 0
    attempts = [
        stranger.get(row),
        stranger.put(row, wrapped(name="Hijacked")),
        stranger.delete(row),
        stranger.delete(f"{row}?force=true"),
        stranger.post(f"{row}/enable"),
        stranger.post(f"{row}/disable"),
        stranger.get(f"{row}/versions"),
    ]
    assert [response.status_code for response in attempts] == [404] * len(attempts)
    assert attempts[0].json["status"] == "Not Found"
    assert admin.get(row).json == created


@pytest.mark.parametrize(
    "path", ["/workflows/not-a-uuid", "/workflows/123/versions", "/workflows/xyz/enable"]
)
def test_an_id_that_is_not_a_uuid_is_a_404(admin: Any, path: str) -> None:
    method = admin.post if path.endswith("enable") else admin.get
    response = method(f"{API}{path}")
    assert response.status_code == 404
    assert response.json["code"] == 404


def test_openapi_documents_every_workflow_endpoint_with_its_permission(client: Any) -> None:
    spec = client.get(f"{API}/openapi.json").json
    expected = {
        ("/api/v1/workflows", "get"): ("workflow:read", {"200", "401", "403", "422"}),
        ("/api/v1/workflows", "post"): ("workflow:create", {"201", "409", "422"}),
        ("/api/v1/workflows/validate", "post"): ("workflow:create", {"200", "422"}),
        ("/api/v1/workflows/{workflow_row_id}", "get"): ("workflow:read", {"200", "404"}),
        ("/api/v1/workflows/{workflow_row_id}", "put"): ("workflow:update", {"200", "404", "422"}),
        ("/api/v1/workflows/{workflow_row_id}", "delete"): ("workflow:delete", {"204", "409"}),
        ("/api/v1/workflows/{workflow_row_id}/enable", "post"): ("workflow:update", {"200"}),
        ("/api/v1/workflows/{workflow_row_id}/disable", "post"): ("workflow:update", {"200"}),
        ("/api/v1/workflows/{workflow_row_id}/versions", "get"): ("workflow:read", {"200"}),
        ("/api/v1/rules", "post"): ("rule:create", {"201", "409", "422"}),
        ("/api/v1/rules/{rule_row_id}/test", "post"): ("rule:read", {"200", "404"}),
        ("/api/v1/records", "get"): ("record:read", {"200", "403"}),
        ("/api/v1/records/{entity}/{entity_id}", "get"): ("record:read", {"200", "404"}),
    }
    for (path, method), (permission, codes) in expected.items():
        operation = spec["paths"][path][method]
        text = operation.get("summary", "") + operation.get("description", "")
        assert f"Requires `{permission}`" in text, (path, method)
        assert codes <= set(operation["responses"]), (path, method, operation["responses"])
    body = spec["paths"]["/api/v1/workflows"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]
