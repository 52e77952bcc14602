"""Parallel steps: branches as tasks, one join whatever the order, retries inside branches."""

from __future__ import annotations

from typing import Any

from tests.integration.engine.conftest import create_workflow, drive, execution, send_event, trace
from tests.support import unique


def parallel_workflow(event: str, url: str, strategy: str = "all_must_pass") -> dict[str, Any]:
    return {
        "workflow_id": unique("wf"),
        "version": "1",
        "name": "Parallel",
        "definition": {
            "trigger": {"type": "event", "event": event},
            "steps": [
                {
                    "id": "checks",
                    "type": "parallel",
                    "parallel": {
                        "strategy": strategy,
                        "steps": [
                            {
                                "id": "small",
                                "type": "condition",
                                "condition": {"field": "n", "operator": "lt", "value": 10},
                            },
                            {
                                "id": "remote",
                                "type": "execute",
                                "execute": [{"type": "http_request", "url": url, "method": "POST"}],
                                "retry": {
                                    "max_attempts": 2,
                                    "initial_interval": "1s",
                                    "retry_on": ["5xx"],
                                },
                            },
                        ],
                    },
                    "next": "ok",
                    "on_error": "review",
                },
                {"id": "ok", "type": "action", "action": {"type": "allow"}},
                {
                    "id": "review",
                    "type": "action",
                    "action": {"type": "block", "reason": "{{ error.message }}"},
                },
            ],
        },
    }


def test_all_branches_passing_join_once_to_next(admin: Any, rt: Any, http_sink: Any) -> None:
    event = f"par.{unique('e')}"
    create_workflow(admin, parallel_workflow(event, f"{http_sink.url}/par-ok"))
    [execution_id] = send_event(admin, event, {"n": 1})["execution_ids"]
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    steps = trace(admin, execution_id)["steps"]
    top = [(s["step_id"], s["status"]) for s in steps if not s["branch_key"]]
    assert top == [("checks", "completed"), ("ok", "completed")]
    assert sorted(s["step_id"] for s in steps if s["branch_key"]) == ["remote", "small"]
    assert body["context"]["steps"]["checks"]["output"]["branches"]["small"]["passed"] is True


def test_a_failing_branch_retries_then_routes_on_error(admin: Any, rt: Any, http_sink: Any) -> None:
    event = f"par.{unique('e')}"
    path = f"/par-down/{unique('p')}"
    http_sink.respond(path, status=502)
    create_workflow(admin, parallel_workflow(event, http_sink.url + path))
    [execution_id] = send_event(admin, event, {"n": 1})["execution_ids"]
    drive(rt, include_delayed=True)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    remote = [
        (s["attempt"], s["status"])
        for s in trace(admin, execution_id)["steps"]
        if s["step_id"] == "remote"
    ]
    assert remote == [(1, "failed"), (2, "failed")]
    assert len(http_sink.calls(path)) == 2


def test_a_fan_out_paused_midway_finishes_after_resume(admin: Any, rt: Any, http_sink: Any) -> None:
    from tasks.dispatch import Ticket
    from tasks.steprun import run_step_message
    from tests.integration.engine.conftest import API
    from tests.integration.engine.test_delivery_guarantees import tickets_of

    event = f"par.{unique('e')}"
    create_workflow(admin, parallel_workflow(event, f"{http_sink.url}/par-pause"))
    [execution_id] = send_event(admin, event, {"n": 1})["execution_ids"]
    # Run only the fan-out, then pause: the branches' deliveries are spent as no-ops.
    [ticket] = tickets_of(rt, execution_id)
    assert run_step_message(rt, Ticket.parse(ticket.message())) == "fanned_out"
    assert admin.post(f"{API}/executions/{execution_id}/pause").json["status"] == "paused"
    drive(rt)
    assert execution(admin, execution_id)["status"] == "paused"
    assert [s for s in trace(admin, execution_id)["steps"] if s["branch_key"]] == []
    resumed = admin.post(f"{API}/executions/{execution_id}/resume")
    assert resumed.json["status"] == "running"
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
