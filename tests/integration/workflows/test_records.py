"""The record store, as workflows leave it: listed, filtered and read by key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.workflows.builders import API, insert_record
from tests.support import add_member, register

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(client: Any) -> Any:
    return register(client)


@pytest.fixture
def records(app: Any, admin: Any) -> dict[str, str]:
    org = admin.organization_id
    return {
        "quote-1": str(insert_record(app, org, "quote", "q-1", {"status": "approved"})),
        "quote-2": str(insert_record(app, org, "quote", "q-2", {"status": "draft"})),
        "product-1": str(insert_record(app, org, "product", "p/1", {"out_of_stock": True})),
    }


def test_records_are_listed_in_a_page_envelope(admin: Any, records: dict[str, str]) -> None:
    response = admin.get(f"{API}/records")
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"records", "total", "page", "page_size"}
    assert body["total"] == 3
    assert {row["id"] for row in body["records"]} == set(records.values())
    assert set(body["records"][0]) == {
        "id",
        "entity",
        "entity_id",
        "data",
        "created_at",
        "updated_at",
    }
    paged = admin.get(f"{API}/records?page=2&page_size=2").json
    assert (len(paged["records"]), paged["page"], paged["page_size"]) == (1, 2, 2)
    assert admin.get(f"{API}/records?page_size=101").status_code == 422


def test_records_are_filtered_by_entity_and_entity_id(admin: Any, records: dict[str, str]) -> None:
    quotes = admin.get(f"{API}/records?entity=quote").json
    assert {row["entity_id"] for row in quotes["records"]} == {"q-1", "q-2"}
    one = admin.get(f"{API}/records?entity=quote&entity_id=q-2").json
    assert [row["data"] for row in one["records"]] == [{"status": "draft"}]
    assert admin.get(f"{API}/records?entity=order").json["total"] == 0


def test_a_record_is_read_by_entity_and_entity_id(admin: Any, records: dict[str, str]) -> None:
    response = admin.get(f"{API}/records/quote/q-1")
    assert response.status_code == 200, response.json
    assert response.json["id"] == records["quote-1"]
    assert response.json["data"] == {"status": "approved"}
    assert admin.get(f"{API}/records/product/p/1").json["id"] == records["product-1"]


def test_an_unknown_record_is_a_404(admin: Any, records: dict[str, str]) -> None:
    response = admin.get(f"{API}/records/quote/q-404")
    assert response.status_code == 404
    assert response.json["code"] == 404
    assert response.json["status"] == "Not Found"
    assert admin.get(f"{API}/records/order/q-1").status_code == 404


def test_another_organization_sees_no_records(client: Any, records: dict[str, str]) -> None:
    stranger = register(client)
    assert stranger.get(f"{API}/records").json["total"] == 0
    assert stranger.get(f"{API}/records/quote/q-1").status_code == 404


def test_reading_records_needs_record_read(client: Any, admin: Any) -> None:
    viewer, agent = register(client), register(client)
    add_member(admin, viewer, "workflow_viewer")
    add_member(admin, agent, "agent")
    assert viewer.get(f"{API}/records").status_code == 200
    assert agent.get(f"{API}/records").status_code == 403
    assert agent.get(f"{API}/records/quote/q-1").status_code == 403
    assert client.get(f"{API}/records").status_code == 401
