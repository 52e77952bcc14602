"""Starting executions: the row, its pinned definition and its first ticket, in one transaction.

Used by the events API, manual execution and (later) the scheduler. The caller
commits, then publishes the returned tickets (`Launch.tickets`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.context import build_context
from engine.definition import Definition
from engine.state import ExecutionStatus
from models.execution import DispatchOutbox, Event, Execution
from models.workflow import Workflow
from tasks.dispatch import add_ticket, step_limit


@dataclass(frozen=True)
class Launch:
    execution: Execution
    ticket: DispatchOutbox


def start_execution(
    session: Session,
    workflow: Workflow,
    payload: dict[str, Any],
    *,
    now: datetime,
    trigger_type: str,
    event: Event | None = None,
    created_by: uuid.UUID | None = None,
) -> Launch:
    """Create a pending execution of this exact workflow version and ticket its first step."""
    [launch] = start_executions(
        session,
        [(workflow, uuid.uuid4())],
        payload,
        now=now,
        trigger_type=trigger_type,
        event=event,
        created_by=created_by,
    )
    return launch


def start_executions(
    session: Session,
    workflows: list[tuple[Workflow, uuid.UUID]],
    payload: dict[str, Any],
    *,
    now: datetime,
    trigger_type: str,
    event: Event | None = None,
    created_by: uuid.UUID | None = None,
) -> list[Launch]:
    """Start one execution per (workflow version, pre-allocated execution id), with
    one round trip per table however many workflows an event starts."""
    executions = [
        _new_execution(
            workflow,
            execution_id,
            payload,
            now=now,
            trigger_type=trigger_type,
            event=event,
            created_by=created_by,
        )
        for workflow, execution_id in workflows
    ]
    session.add_all(executions)
    # No ORM relationship orders these inserts: the tickets' foreign key needs
    # the execution rows first.
    session.flush()
    launches = []
    for (workflow, _), execution in zip(workflows, executions, strict=True):
        first = Definition.from_dict(workflow.definition).first_step
        ticket = add_ticket(
            session,
            organization_id=workflow.organization_id,
            execution_id=execution.id,
            step_id=first.id,
            now=now,
            limit=step_limit(first.timeout),
        )
        launches.append(Launch(execution, ticket))
    return launches


def _new_execution(
    workflow: Workflow,
    execution_id: uuid.UUID,
    payload: dict[str, Any],
    *,
    now: datetime,
    trigger_type: str,
    event: Event | None,
    created_by: uuid.UUID | None,
) -> Execution:
    definition = Definition.from_dict(workflow.definition)
    context = build_context(
        payload,
        execution_id=str(execution_id),
        started_at=now,
        workflow_id=workflow.workflow_id,
        workflow_version=workflow.version,
        event_type=event.event_type if event is not None else None,
        event_id=str(event.id) if event is not None else None,
    )
    first = definition.first_step
    return Execution(
        id=execution_id,
        organization_id=workflow.organization_id,
        workflow_row_id=workflow.id,
        workflow_id=workflow.workflow_id,
        workflow_version=workflow.version,
        # The pinned copy: later edits of the workflow never reach this run.
        definition=workflow.definition,
        status=str(ExecutionStatus.PENDING),
        trigger_type=trigger_type,
        trigger_event=event.event_type if event is not None else None,
        trigger_event_id=event.id if event is not None else None,
        trigger_payload=payload,
        context=context,
        current_step_id=first.id,
        attempt_group=1,
        version=1,
        started_at=now,
        running_seconds=0.0,
        deadline_at=now + definition.timeout,
        heartbeat_at=now,
        created_by=created_by,
    )
