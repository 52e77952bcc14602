"""Durable waits woken by events (with correlation), and approvals carried back into
executions through tasks.resume (what the approvals API will call)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from tests.integration.engine.conftest import (
    create_workflow,
    drive,
    execution,
    path,
    send_event,
    trace,
)
from tests.integration.workflows.builders import EXAMPLES_DIR
from tests.support import unique


def decide(rt: Any, execution_id: str, status: str) -> None:
    """Decide the execution's pending approval as the approvals API would."""
    from engine.state import ApprovalStatus
    from models.execution import Approval
    from tasks.applied import record_metrics
    from tasks.resume import resume_after_approval

    with rt.session_factory() as session:
        approval = session.scalars(
            select(Approval).where(
                Approval.execution_id == uuid.UUID(execution_id), Approval.status == "pending"
            )
        ).one()
        approval.status = status
        approval.decided_at = datetime.now(UTC)
        applied = resume_after_approval(
            session,
            approval,
            status=ApprovalStatus(status),
            approver="boss",
            reason="ok",
            now=datetime.now(UTC),
        )
        session.commit()
    assert applied is not None
    record_metrics(applied)


def test_quote_multi_level_approval_runs_through_approvals_and_follow_up_events(
    admin: Any, rt: Any, http_sink: Any
) -> None:
    example = json.loads((EXAMPLES_DIR / "quote-multi-level-approval.json").read_text())
    create_workflow(admin, example)
    quote = {"id": unique("q"), "number": "Q-9", "total": 9000, "discount_percentage": 5}
    [execution_id] = send_event(
        admin,
        "quote.created",
        {
            "quote": quote,
            "customer": {"name": "Acme"},
            "sales_rep": {"email": "rep@example.com", "slack_id": "#reps"},
            "sales_manager": {"email": "boss@example.com", "slack_id": "#bosses"},
            "integrations": {"crm": {"webhook_url": f"{http_sink.url}/crm-quotes"}},
        },
    )["execution_ids"]
    drive(rt)
    assert execution(admin, execution_id)["status"] == "waiting"
    decide(rt, execution_id, "approved")
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "waiting", (body["error_message"], trace(admin, execution_id)["steps"])
    assert body["current_step_id"] == "wait_for_rep_decision"
    assert body["context"]["approvals"]["require_sales_rep_review"]["status"] == "approved"
    send_event(
        admin, "quote.rep_reviewed", {"quote": {"rep_decision": "approved", "rep_comments": "fine"}}
    )
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["current_step_id"]) == ("waiting", "require_manager_approval")
    decide(rt, execution_id, "approved")
    drive(rt)
    send_event(admin, "quote.manager_reviewed", {"quote": {"manager_decision": "approved"}})
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed"), body["error_message"]
    assert path(trace(admin, execution_id)) == [
        "check_quote_value",
        "require_sales_rep_review",
        "wait_for_rep_decision",
        "check_rep_decision",
        "require_manager_approval",
        "wait_for_manager_decision",
        "check_manager_decision",
        "approve_quote",
    ]
    assert (
        body["context"]["events"]["quote.manager_reviewed"]["quote"]["manager_decision"]
        == "approved"
    )


def test_a_rejected_approval_blocks_the_execution(admin: Any, rt: Any) -> None:
    example = json.loads((EXAMPLES_DIR / "high-value-order-approval.json").read_text())
    example["workflow_id"] = unique("hv")
    example["trigger"]["event"] = event = f"order.{unique('e')}"
    create_workflow(admin, example)
    payload = {"order": {"id": "o1", "total": 50000}, "customer": {"tier": "silver", "name": "Bo"}}
    [execution_id] = send_event(admin, event, payload)["execution_ids"]
    drive(rt)
    decide(rt, execution_id, "rejected")
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")


def test_a_wait_with_match_takes_only_its_correlated_event(admin: Any, rt: Any) -> None:
    event = f"wait.{unique('e')}"
    reply = f"reply.{unique('e')}"
    create_workflow(
        admin,
        {
            "workflow_id": unique("wf"),
            "version": "1",
            "name": "Correlated",
            "definition": {
                "trigger": {"type": "event", "event": event},
                "steps": [
                    {
                        "id": "wait_reply",
                        "type": "wait",
                        "wait": {
                            "event": reply,
                            "match": {
                                "field": "ticket.id",
                                "operator": "eq",
                                "value": "{{ ticket.id }}",
                            },
                            "timeout": "1h",
                        },
                        "next": "done",
                    },
                    {"id": "done", "type": "action", "action": {"type": "allow"}},
                ],
            },
        },
    )
    [first] = send_event(admin, event, {"ticket": {"id": "t-1"}})["execution_ids"]
    [second] = send_event(admin, event, {"ticket": {"id": "t-2"}})["execution_ids"]
    drive(rt)
    assert execution(admin, first)["status"] == execution(admin, second)["status"] == "waiting"
    send_event(admin, reply, {"ticket": {"id": "t-2", "answer": 42}})
    drive(rt)
    assert execution(admin, first)["status"] == "waiting"
    done = execution(admin, second)
    assert done["status"] == "completed"
    assert done["context"]["ticket"]["answer"] == 42
