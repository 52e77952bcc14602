"""Starting executions: the row, its pinned definition and its first ticket, in one transaction.

Used by the events API, manual execution and the scheduler. The caller
commits, then publishes the returned tickets (`Launch.ticket`). Rows are
written with plain INSERTs (models.rows) rather than the ORM's unit of work:
starting executions is on the path of every event, and nothing reads these
rows back in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from engine.context import build_context
from engine.definition import Definition, Trigger
from engine.state import ExecutionStatus
from models.execution import DispatchOutbox, Event, Execution
from models.rows import InsertBatch, JsonText
from tasks.dispatch import insert_tickets, new_ticket
from tasks.locking import carry_snapshot, inserted_row, pinned_definition


class WorkflowVersion(Protocol):
    """What starting an execution reads of a workflow version: an ORM `Workflow`, or
    a `WorkflowRecord` read with a plain query on the hot path."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def organization_id(self) -> uuid.UUID: ...
    @property
    def workflow_id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def definition(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow version read with a plain query, its definition as the stored JSON
    text: parsed once per text (tasks.locking.pinned_definition), and copied into
    the execution row as it is, without a round of json.loads and json.dumps."""

    id: uuid.UUID
    organization_id: uuid.UUID
    workflow_id: str
    version: str
    definition_text: str

    @property
    def definition(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.definition_text))

    @property
    def trigger(self) -> Trigger:
        """Only the trigger (for routing): a definition that no longer parses as a
        whole fails the events that start it, not every event of its organization."""
        return _trigger_of(self.definition_text)

    @property
    def parsed(self) -> Definition:
        return pinned_definition(self.definition_text)


@lru_cache(maxsize=256)
def _trigger_of(definition_text: str) -> Trigger:
    return Trigger.from_dict(json.loads(definition_text).get("trigger") or {})


@dataclass(frozen=True)
class Launch:
    execution_id: uuid.UUID
    ticket: DispatchOutbox


def start_execution(
    session: Session,
    workflow: WorkflowVersion,
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
    session: Session | Connection,
    workflows: Sequence[tuple[WorkflowVersion, uuid.UUID]],
    payload: dict[str, Any],
    *,
    now: datetime,
    trigger_type: str,
    event: Event | None = None,
    created_by: uuid.UUID | None = None,
    batch: InsertBatch | None = None,
) -> list[Launch]:
    """Start one execution per (workflow version, pre-allocated execution id): their
    rows and tickets in one round trip, however many workflows an event starts, and
    with them whatever INSERTs the caller put in `batch` first (the event's). On an
    autocommit connection instead of a session, that one write is its own transaction."""
    return start_many(
        session,
        [Start(workflow, execution_id, payload, event) for workflow, execution_id in workflows],
        now=now,
        trigger_type=trigger_type,
        created_by=created_by,
        batch=batch,
    )


@dataclass(frozen=True)
class Start:
    """One execution to start: its workflow version, its pre-allocated id, the payload
    it starts with and the event that triggered it (if any)."""

    workflow: WorkflowVersion
    execution_id: uuid.UUID
    payload: dict[str, Any]
    event: Event | None = None


def start_many(
    session: Session | Connection,
    starts: Sequence[Start],
    *,
    now: datetime,
    trigger_type: str,
    created_by: uuid.UUID | None = None,
    batch: InsertBatch | None = None,
) -> list[Launch]:
    """Start executions each with its own payload and event (a batch of events): every
    row and ticket in one round trip, after whatever INSERTs the caller put in `batch`."""
    batch = batch if batch is not None else InsertBatch()
    if not starts:
        batch.send(session)
        return []
    definitions = [_parsed(start.workflow) for start in starts]
    rows = [
        _new_execution(
            start.workflow,
            definition,
            start.execution_id,
            start.payload,
            now=now,
            trigger_type=trigger_type,
            event=start.event,
            created_by=created_by,
        )
        for start, definition in zip(starts, definitions, strict=True)
    ]
    contexts = [json.dumps(row["context"]) for row in rows]
    batch.add(
        Execution,
        [{**row, "context": JsonText(text)} for row, text in zip(rows, contexts, strict=True)],
    )
    tickets = [
        new_ticket(
            organization_id=start.workflow.organization_id,
            execution_id=start.execution_id,
            definition=definition,
            step=definition.first_step,
            now=now,
        )
        for start, definition in zip(starts, definitions, strict=True)
    ]
    row_xmin = insert_tickets(session, tickets, batch=batch)
    for start, row, context_json, ticket in zip(starts, rows, contexts, tickets, strict=True):
        _carry_new_row(start.workflow, row, context_json, ticket, row_xmin)
    return [
        Launch(start.execution_id, ticket) for start, ticket in zip(starts, tickets, strict=True)
    ]


def _carry_new_row(
    workflow: WorkflowVersion,
    row: dict[str, Any],
    context_json: str,
    ticket: DispatchOutbox,
    row_xmin: str | None,
) -> None:
    """The first step's message carries the row as inserted, so that step need not read
    it (tasks.locking.snapshot): the tickets' xmin is the rows', written in the same
    transaction. Only for a definition pinned as stored text, the text the worker reads."""
    if row_xmin is None or not isinstance(workflow, WorkflowRecord):
        return
    execution = inserted_row(row, workflow.definition_text, row_xmin)
    if execution is not None:
        carry_snapshot(ticket, execution, context_json)


def _parsed(workflow: WorkflowVersion) -> Definition:
    if isinstance(workflow, WorkflowRecord):
        return workflow.parsed
    return Definition.from_dict(workflow.definition)


def _new_execution(
    workflow: WorkflowVersion,
    definition: Definition,
    execution_id: uuid.UUID,
    payload: dict[str, Any],
    *,
    now: datetime,
    trigger_type: str,
    event: Event | None,
    created_by: uuid.UUID | None,
) -> dict[str, Any]:
    """The new execution row's column values."""
    context = build_context(
        payload,
        execution_id=str(execution_id),
        started_at=now,
        workflow_id=workflow.workflow_id,
        workflow_version=workflow.version,
        event_type=event.event_type if event is not None else None,
        event_id=str(event.id) if event is not None else None,
    )
    return {
        "id": execution_id,
        "organization_id": workflow.organization_id,
        "workflow_row_id": workflow.id,
        "workflow_id": workflow.workflow_id,
        "workflow_version": workflow.version,
        # The pinned copy: later edits of the workflow never reach this run.
        "definition": (
            JsonText(workflow.definition_text)
            if isinstance(workflow, WorkflowRecord)
            else workflow.definition
        ),
        "status": str(ExecutionStatus.PENDING),
        "trigger_type": trigger_type,
        "trigger_event": event.event_type if event is not None else None,
        "trigger_event_id": event.id if event is not None else None,
        "trigger_payload": payload,
        "context": context,
        "current_step_id": definition.first_step.id,
        "attempt_group": 1,
        "version": 1,
        "started_at": now,
        "running_seconds": 0.0,
        "deadline_at": now + definition.timeout,
        "heartbeat_at": now,
        "created_by": created_by,
    }
