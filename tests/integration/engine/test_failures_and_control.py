"""Failures are readable and final; operators pause, resume, cancel and retry."""

from __future__ import annotations

from typing import Any

from tests.integration.engine.conftest import (
    API,
    create_workflow,
    drive,
    execution,
    send_event,
    trace,
)
from tests.support import register, unique


def single_step(
    event: str, step: dict[str, Any], *more: dict[str, Any], timeout: str | None = None
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "trigger": {"type": "event", "event": event},
        "steps": [step, *more],
    }
    if timeout:
        definition["timeout"] = timeout
    return {"workflow_id": unique("wf"), "version": "1", "name": "Test", "definition": definition}


def test_a_template_error_fails_the_execution_with_a_readable_trace(admin: Any, rt: Any) -> None:
    event = f"tpl.{unique('e')}"
    create_workflow(
        admin,
        single_step(
            event,
            {
                "id": "compute",
                "type": "execute",
                "execute": [{"type": "set", "values": {"x": "{{ order.total / 0 }}"}}],
            },
        ),
    )
    [execution_id] = send_event(admin, event, {"order": {"total": 5}})["execution_ids"]
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "failed"
    assert body["result"] == "failed"
    assert "compute" in body["error_message"]
    assert "ZeroDivisionError" in body["error_message"]
    [step] = trace(admin, execution_id)["steps"]
    assert step["status"] == "failed"
    assert step["error_message"]


def test_a_type_error_in_record_data_fails_readably(admin: Any, rt: Any) -> None:
    event = f"type.{unique('e')}"
    create_workflow(
        admin,
        single_step(
            event,
            {
                "id": "save",
                "type": "execute",
                "execute": [{"type": "create_record", "entity": "x", "data": "{{ items }}"}],
            },
        ),
    )
    [execution_id] = send_event(admin, event, {"items": [1, 2]})["execution_ids"]
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "failed"
    assert "must be an object" in body["error_message"]


def test_on_error_routes_a_failed_step(admin: Any, rt: Any, http_sink: Any) -> None:
    event = f"onerr.{unique('e')}"
    http_sink.respond("/down", status=500)
    create_workflow(
        admin,
        single_step(
            event,
            {
                "id": "call",
                "type": "execute",
                "execute": [{"type": "webhook", "url": f"{http_sink.url}/down"}],
                "on_error": "fallback",
            },
            {
                "id": "fallback",
                "type": "action",
                "action": {"type": "block", "reason": "{{ error.message }}"},
            },
        ),
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "completed"
    assert body["result"] == "blocked"
    assert [s["step_id"] for s in trace(admin, execution_id)["steps"]] == ["call", "fallback"]
    assert body["context"]["error"]["code"] == "http_5xx"


def test_pause_resume_cancel_are_idempotent_and_audited(admin: Any, rt: Any, app: Any) -> None:
    from tests.integration.workflows.builders import audit_actions

    event = f"ctl.{unique('e')}"
    create_workflow(
        admin,
        single_step(
            event,
            {
                "id": "a",
                "type": "execute",
                "execute": [{"type": "log", "message": "hi"}],
                "next": "b",
            },
            {"id": "b", "type": "action", "action": {"type": "allow"}},
        ),
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    paused = admin.post(f"{API}/executions/{execution_id}/pause")
    assert paused.status_code == 200
    assert paused.json["status"] == "paused"
    assert admin.post(f"{API}/executions/{execution_id}/pause").json["status"] == "paused"
    assert execution_id in [
        e["id"] for e in admin.get(f"{API}/executions/paused").json["executions"]
    ]
    drive(rt)  # the pending ticket is spent, nothing runs
    assert execution(admin, execution_id)["status"] == "paused"
    resumed = admin.post(f"{API}/executions/{execution_id}/resume")
    assert resumed.status_code == 200
    assert resumed.json["status"] == "running"
    assert admin.post(f"{API}/executions/{execution_id}/resume").status_code == 200
    drive(rt)
    done = execution(admin, execution_id)
    assert done["status"] == "completed"
    assert done["result"] == "allowed"
    assert admin.post(f"{API}/executions/{execution_id}/pause").status_code == 409
    assert admin.post(f"{API}/executions/{execution_id}/cancel").status_code == 409
    assert admin.post(f"{API}/executions/{execution_id}/retry").status_code == 409
    actions = audit_actions(app, admin.organization_id, execution_id)
    assert actions == ["execution_paused", "execution_resumed"]


def test_cancel_stops_an_execution_and_its_next_step(admin: Any, rt: Any) -> None:
    event = f"cancel.{unique('e')}"
    create_workflow(
        admin, single_step(event, {"id": "a", "type": "action", "action": {"type": "allow"}})
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    cancelled = admin.post(f"{API}/executions/{execution_id}/cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["error_type"] == "cancelled"
    assert admin.post(f"{API}/executions/{execution_id}/cancel").json["status"] == "cancelled"
    assert admin.post(f"{API}/executions/{execution_id}/resume").status_code == 409
    drive(rt)
    assert trace(admin, execution_id)["steps"] == []


def test_retry_reruns_a_failed_execution_from_its_failed_step_in_a_new_group(
    admin: Any, rt: Any, http_sink: Any
) -> None:
    event = f"retry.{unique('e')}"
    path = f"/once/{unique('p')}"
    http_sink.respond(path, status=500, times=1)
    create_workflow(
        admin,
        single_step(
            event,
            {
                "id": "first",
                "type": "execute",
                "execute": [{"type": "set", "values": {"y": 1}}],
                "next": "call",
            },
            {
                "id": "call",
                "type": "execute",
                "execute": [{"type": "webhook", "url": http_sink.url + path}],
            },
        ),
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    assert execution(admin, execution_id)["status"] == "failed"
    retried = admin.post(f"{API}/executions/{execution_id}/retry")
    assert retried.status_code == 200
    assert retried.json["status"] == "running"
    assert retried.json["attempt_group"] == 2
    assert admin.post(f"{API}/executions/{execution_id}/retry").status_code == 200
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "completed"
    assert body["result"] == "executed"
    steps = trace(admin, execution_id)["steps"]
    assert [(s["step_id"], s["attempt_group"], s["status"]) for s in steps] == [
        ("first", 1, "completed"),
        ("call", 1, "failed"),
        ("call", 2, "completed"),
    ]
    keys = [call.headers["Idempotency-Key"] for call in http_sink.calls(path)]
    assert keys == [f"{execution_id}:call:1:0", f"{execution_id}:call:2:0"]


def test_executions_are_scoped_to_the_organization_and_permissions(
    admin: Any, client: Any, rt: Any
) -> None:
    from tests.support import add_member

    event = f"scope.{unique('e')}"
    create_workflow(
        admin, single_step(event, {"id": "a", "type": "action", "action": {"type": "allow"}})
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    stranger = register(client)
    assert stranger.get(f"{API}/executions/{execution_id}").status_code == 404
    assert stranger.post(f"{API}/executions/{execution_id}/cancel").status_code == 404
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")
    assert viewer.get(f"{API}/executions/{execution_id}").status_code == 200
    assert viewer.post(f"{API}/executions/{execution_id}/pause").status_code == 403
    assert viewer.post(f"{API}/executions/{execution_id}/retry").status_code == 403
    drive(rt)


def test_manual_execute_and_dry_run(admin: Any, rt: Any) -> None:
    event = f"manual.{unique('e')}"
    workflow = create_workflow(
        admin,
        single_step(
            event,
            {
                "id": "check",
                "type": "condition",
                "condition": {"field": "n", "operator": "gt", "value": 1},
                "on_true": "big",
                "on_false": "small",
            },
            {
                "id": "big",
                "type": "execute",
                "execute": [{"type": "webhook", "url": "https://hooks.example.com/x"}],
            },
            {"id": "small", "type": "action", "action": {"type": "allow"}},
        ),
    )
    tested = admin.post(f"{API}/workflows/{workflow['id']}/test", {"payload": {"n": 5}})
    assert tested.status_code == 200, tested.json
    assert tested.json["path"] == ["check", "big"]
    assert tested.json["effects"][0]["kind"] == "http_request"
    started = admin.post(f"{API}/workflows/{workflow['id']}/execute", {"payload": {"n": 0}})
    assert started.status_code == 202, started.json
    assert started.json["trigger_type"] == "manual"
    drive(rt)
    body = execution(admin, started.json["id"])
    assert body["status"] == "completed"
    assert body["result"] == "allowed"
    disabled = create_workflow(
        admin,
        single_step(f"x.{unique('e')}", {"id": "a", "type": "action", "action": {"type": "allow"}}),
        enabled=False,
    )
    assert (
        admin.post(f"{API}/workflows/{disabled['id']}/execute", {"payload": {}}).status_code == 409
    )


def test_a_forced_workflow_delete_cancels_like_any_cancel(admin: Any, rt: Any) -> None:
    """The executions a forced delete cancels lose their open approval, wait and ticket."""
    from sqlalchemy import select

    from models.execution import Approval, DispatchOutbox, Wait

    event = f"forced.{unique('e')}"
    approve = {
        "id": "ask",
        "type": "action",
        "action": {"type": "require_approval"},
        "reason": "check it",
        "next": "done",
    }
    done = {"id": "done", "type": "action", "action": {"type": "allow"}}
    asking = create_workflow(admin, single_step(event, approve, done))
    wait = {"id": "hold", "type": "wait", "wait": {"event": f"{event}.go"}, "timeout": "1h"}
    waiting = create_workflow(admin, single_step(event, wait))
    started = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    queued = send_event(admin, event, {})["execution_ids"]  # tickets not yet run
    ids = started + queued
    assert sorted(execution(admin, i)["status"] for i in started) == ["waiting", "waiting"]

    for workflow in (asking, waiting):
        assert admin.delete(f"{API}/workflows/{workflow['id']}?force=true").status_code == 204

    for execution_id in ids:
        body = execution(admin, execution_id)
        assert (body["status"], body["error_type"]) == ("cancelled", "cancelled")
    with rt.session_factory() as session:
        approvals = session.scalars(select(Approval.status).where(Approval.execution_id.in_(ids)))
        waits = session.scalars(select(Wait.status).where(Wait.execution_id.in_(ids)))
        tickets = session.scalars(
            select(DispatchOutbox.id).where(DispatchOutbox.execution_id.in_(ids))
        )
        assert list(approvals) == ["cancelled"]
        assert list(waits) == ["cancelled"]
        assert list(tickets) == []
    assert drive(rt) == []
