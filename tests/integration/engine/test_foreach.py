"""Foreach steps: one task per item, bounded concurrency, outputs joined in item order."""

from __future__ import annotations

from typing import Any

from tests.integration.engine.conftest import create_workflow, drive, execution, send_event, trace
from tests.support import unique


def foreach_workflow(event: str, body: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("wf"),
        "version": "1",
        "name": "Each line",
        "definition": {
            "trigger": {"type": "event", "event": event},
            "steps": [
                {
                    "id": "each",
                    "type": "foreach",
                    "foreach": {
                        "items": "{{ lines }}",
                        "item_var": "line",
                        "steps": body,
                        **options,
                    },
                    "next": "done",
                    "on_error": "failed_lines",
                },
                {"id": "done", "type": "action", "action": {"type": "allow"}},
                {"id": "failed_lines", "type": "action", "action": {"type": "block"}},
            ],
        },
    }


def test_items_run_as_tasks_and_join_in_order(admin: Any, rt: Any, http_sink: Any) -> None:
    event = f"each.{unique('e')}"
    path = f"/line/{unique('p')}"
    body = [
        {
            "id": "post",
            "type": "execute",
            "execute": [
                {
                    "type": "http_request",
                    "method": "POST",
                    "url": http_sink.url + path,
                    "body": {"sku": "{{ line.sku }}", "i": "{{ index }}"},
                },
                {
                    "type": "create_record",
                    "entity": "line",
                    "entity_id": "{{ line.sku }}",
                    "data": {"qty": "{{ line.qty }}"},
                },
            ],
        }
    ]
    create_workflow(admin, foreach_workflow(event, body, concurrency=2))
    lines = [{"sku": f"s{i}", "qty": i} for i in range(5)]
    [execution_id] = send_event(admin, event, {"lines": lines})["execution_ids"]
    drive(rt)
    result = execution(admin, execution_id)
    assert (result["status"], result["result"]) == ("completed", "allowed")
    output = result["context"]["steps"]["each"]["output"]
    assert [item["post"]["results"][0]["status_code"] for item in output["items"]] == [200] * 5
    calls = http_sink.calls(path)
    assert sorted(call.body["sku"] for call in calls) == [f"s{i}" for i in range(5)]
    keys = {call.headers["Idempotency-Key"] for call in calls}
    assert len(keys) == 5  # one key per item
    items = [s for s in trace(admin, execution_id)["steps"] if s["branch_key"]]
    assert sorted(s["branch_key"] for s in items) == [f"each/{i}" for i in range(5)]
    records = admin.get("/api/v1/records", query_string={"entity": "line"}).json["records"]
    assert sorted(r["entity_id"] for r in records) == [f"s{i}" for i in range(5)]


def test_a_failing_item_fails_the_join_and_routes_on_error(admin: Any, rt: Any) -> None:
    event = f"each.{unique('e')}"
    body = [
        {
            "id": "positive",
            "type": "condition",
            "condition": {"field": "line.qty", "operator": "gt", "value": 0},
        }
    ]
    create_workflow(admin, foreach_workflow(event, body))
    [execution_id] = send_event(admin, event, {"lines": [{"qty": 1}, {"qty": 0}, {"qty": 3}]})[
        "execution_ids"
    ]
    drive(rt)
    result = execution(admin, execution_id)
    assert (result["status"], result["result"]) == ("completed", "blocked")
    assert result["context"]["error"]["failed"] == ["1"]


def test_an_empty_list_joins_at_once(admin: Any, rt: Any) -> None:
    event = f"each.{unique('e')}"
    create_workflow(
        admin,
        foreach_workflow(
            event, [{"id": "noop", "type": "execute", "execute": [{"type": "log", "message": "x"}]}]
        ),
    )
    [execution_id] = send_event(admin, event, {"lines": []})["execution_ids"]
    drive(rt)
    assert execution(admin, execution_id)["status"] == "completed"


def test_items_that_are_not_a_list_fail_readably(admin: Any, rt: Any) -> None:
    event = f"each.{unique('e')}"
    create_workflow(
        admin,
        foreach_workflow(
            event, [{"id": "noop", "type": "execute", "execute": [{"type": "log", "message": "x"}]}]
        ),
    )
    [execution_id] = send_event(admin, event, {"lines": {"not": "a list"}})["execution_ids"]
    drive(rt)
    result = execution(admin, execution_id)
    assert result["result"] == "blocked"  # routed to on_error
    assert "not a list" in result["context"]["error"]["message"]
