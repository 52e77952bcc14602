"""Workflow bodies and direct row inserts shared by the workflow API tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples" / "original"
API = "/api/v1"


def example_files() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.json"))


def load_example(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def steps() -> list[dict[str, Any]]:
    return [
        {
            "id": "check_total",
            "type": "condition",
            "condition": {"field": "order.total", "operator": "gt", "value": 100},
            "on_true": "block_order",
            "on_false": "allow_order",
        },
        {"id": "block_order", "type": "action", "action": {"type": "block", "reason": "Too big"}},
        {"id": "allow_order", "type": "action", "action": {"action": "allow"}},
    ]


def wrapped(
    workflow_id: str = "order_check", version: str = "1.0.0", **overrides: Any
) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "version": version,
        "name": "Order check",
        "description": "Blocks big orders",
        "tags": ["orders"],
        "definition": {
            "trigger": {"type": "event", "event": "order.created"},
            "steps": steps(),
        },
        **overrides,
    }


def flat(workflow_id: str = "order_check", version: str = "1.0.0", **overrides: Any) -> dict:
    body = wrapped(workflow_id, version)
    definition = body.pop("definition")
    return {**body, **definition, **overrides}


def create(caller: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = caller.post(f"{API}/workflows", body)
    assert response.status_code == 201, response.json
    return response.json


def insert_execution(app: Any, workflow: dict[str, Any], status: str = "running") -> uuid.UUID:
    from models.execution import Execution

    with app.extensions["iw"].session_factory() as session:
        execution = Execution(
            organization_id=uuid.UUID(workflow["organization_id"]),
            workflow_row_id=uuid.UUID(workflow["id"]),
            workflow_id=workflow["workflow_id"],
            workflow_version=workflow["version"],
            definition=workflow["definition"],
            status=status,
            trigger_type="event",
            trigger_event="order.created",
            trigger_payload={"order": {"total": 1}},
            context={"order": {"total": 1}},
        )
        session.add(execution)
        session.commit()
        return execution.id


def insert_record(
    app: Any, organization_id: str, entity: str, entity_id: str, data: dict[str, Any]
) -> uuid.UUID:
    from models.business import Record

    with app.extensions["iw"].session_factory() as session:
        record = Record(
            organization_id=uuid.UUID(organization_id),
            entity=entity,
            entity_id=entity_id,
            data=data,
        )
        session.add(record)
        session.commit()
        return record.id


def audit_actions(app: Any, organization_id: str, resource_id: str) -> list[str]:
    from sqlalchemy import select

    from models.business import AuditLog

    with app.extensions["iw"].session_factory() as session:
        rows = session.scalars(
            select(AuditLog.action)
            .where(
                AuditLog.organization_id == uuid.UUID(organization_id),
                AuditLog.resource_id == resource_id,
            )
            .order_by(AuditLog.created_at)
        )
        return list(rows)
