"""Workflows and helpers the approvals and durable-wait tests share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.integration.engine.conftest import API, create_workflow, drive, send_event
from tests.support import Caller, unique

GROUP = "finance"


def approval_workflow(caller: Caller, **gate: Any) -> str:
    """A one-step workflow asking the `finance` group; returns its trigger event type."""
    event = f"order.{unique('e')}"
    steps: list[dict[str, Any]] = [
        {
            "id": "gate",
            "type": "action",
            "action": {"type": "require_approval", "reason": "Big order"},
            "metadata": {"approver_role": GROUP},
            **gate,
        },
        {"id": "late", "type": "action", "action": {"type": "allow"}},
    ]
    if not gate:
        steps = steps[:1]
    create_workflow(
        caller,
        {
            "workflow_id": unique("appr"),
            "version": "1.0.0",
            "name": "Approval gate",
            "definition": {"trigger": {"type": "event", "event": event}, "steps": steps},
        },
    )
    return event


def waiting_approval(caller: Caller, rt: Any, **gate: Any) -> tuple[str, dict[str, Any]]:
    """Start an execution that waits on an approval; returns (execution id, approval)."""
    event = approval_workflow(caller, **gate)
    [execution_id] = send_event(caller, event, {"order": {"id": "o1"}})["execution_ids"]
    drive(rt)
    response = caller.get(f"{API}/approvals", query_string={"execution_id": execution_id})
    assert response.status_code == 200, response.json
    [approval] = response.json["approvals"]
    assert approval["status"] == "pending"
    return execution_id, approval


def set_column(rt: Any, table: str, column: str, row_id: str, value: Any) -> None:
    with rt.session_factory() as session:
        session.execute(
            text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
            {"value": value, "id": uuid.UUID(row_id)},
        )
        session.commit()


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)
