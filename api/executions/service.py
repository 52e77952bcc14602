"""Executions: reading them and their traces, operator control, manual starts and dry runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.dispatch import publish_after_commit
from api.errors import abort
from api.pagination import paginate
from api.services import services
from models.execution import Execution, StepRun
from models.workflow import Workflow
from tasks import control
from tasks.launch import start_execution

CANCELLED_BY_USER = "Cancelled by a user"


def list_executions(organization_id: uuid.UUID, query: Mapping[str, Any]) -> dict[str, Any]:
    statement = select(Execution).where(Execution.organization_id == organization_id)
    if query.get("workflow_id"):
        statement = statement.where(Execution.workflow_id == query["workflow_id"])
    if query.get("status"):
        statement = statement.where(Execution.status == query["status"])
    if query.get("since"):
        statement = statement.where(Execution.created_at >= query["since"])
    if query.get("until"):
        statement = statement.where(Execution.created_at < query["until"])
    statement = statement.order_by(Execution.created_at.desc(), Execution.id)
    with services().session_factory() as session:
        return paginate(session, statement, query["page"], query["page_size"], "executions")


def get_execution(organization_id: uuid.UUID, execution_id: uuid.UUID) -> Execution:
    with services().session_factory() as session:
        return _load(session, organization_id, execution_id)


def get_trace(organization_id: uuid.UUID, execution_id: uuid.UUID) -> dict[str, Any]:
    with services().session_factory() as session:
        execution = _load(session, organization_id, execution_id)
        steps = session.scalars(
            select(StepRun)
            .where(StepRun.execution_id == execution.id)
            .order_by(
                StepRun.started_at.asc().nulls_last(),
                StepRun.created_at,
                StepRun.attempt_group,
                StepRun.attempt,
            )
        ).all()
    return {"execution": execution, "steps": list(steps)}


def _load(
    session: Session, organization_id: uuid.UUID, execution_id: uuid.UUID, *, lock: bool = False
) -> Execution:
    statement = select(Execution).where(
        Execution.id == execution_id, Execution.organization_id == organization_id
    )
    if lock:
        statement = statement.with_for_update()
    execution = session.scalars(statement).first()
    if execution is None:
        abort(404, "Execution not found")
    return execution


Operation = Callable[[Session, Execution, datetime], control.ControlResult]


def _control(
    principal: Principal, execution_id: uuid.UUID, action: str, operation: Operation
) -> Execution:
    now = datetime.now(UTC)
    with services().unit_of_work() as uow:
        session = uow.session
        execution = _load(session, principal.organization_id, execution_id, lock=True)
        try:
            outcome = operation(session, execution, now)
        except control.TransitionError as exc:
            abort(409, str(exc), {"status": [execution.status]})
        if outcome.changed:
            record_audit(
                session,
                action,
                "execution",
                execution.id,
                {"status": {"from": outcome.previous_status, "to": execution.status}},
                principal=principal,
            )
            publish_after_commit(uow, outcome.tickets)
            for callback in outcome.after_commit:
                uow.after_commit(callback)
        session.flush()
        session.refresh(execution)
        uow.commit()
    return execution


def pause(principal: Principal, execution_id: uuid.UUID) -> Execution:
    return _control(principal, execution_id, "execution_paused", control.pause)


def resume(principal: Principal, execution_id: uuid.UUID) -> Execution:
    return _control(principal, execution_id, "execution_resumed", control.resume)


def cancel(principal: Principal, execution_id: uuid.UUID, reason: str | None) -> Execution:
    message = reason or CANCELLED_BY_USER
    return _control(
        principal,
        execution_id,
        "execution_cancelled",
        lambda session, execution, now: control.cancel(session, execution, now, message),
    )


def retry(principal: Principal, execution_id: uuid.UUID) -> Execution:
    return _control(principal, execution_id, "execution_retried", control.retry)


def execute(principal: Principal, workflow_row_id: uuid.UUID, payload: dict[str, Any]) -> Execution:
    """Start a manual execution of this workflow version; it must be enabled (409 otherwise)."""
    now = datetime.now(UTC)
    with services().unit_of_work() as uow:
        session = uow.session
        workflow = _workflow(session, principal.organization_id, workflow_row_id)
        if not workflow.enabled:
            abort(409, "The workflow version is disabled; enable it before executing it")
        launch = start_execution(
            session, workflow, payload, now=now, trigger_type="manual", created_by=principal.user_id
        )
        record_audit(
            session,
            "workflow_executed",
            "execution",
            launch.execution_id,
            {"workflow_id": workflow.workflow_id, "version": workflow.version},
            principal=principal,
        )
        publish_after_commit(uow, [launch.ticket])
        execution = session.get_one(Execution, launch.execution_id)
        uow.commit()
    return execution


def _workflow(session: Session, organization_id: uuid.UUID, row_id: uuid.UUID) -> Workflow:
    workflow = session.scalars(
        select(Workflow).where(Workflow.id == row_id, Workflow.organization_id == organization_id)
    ).first()
    if workflow is None:
        abort(404, "Workflow not found")
    return workflow


def load_workflow(organization_id: uuid.UUID, row_id: uuid.UUID) -> Workflow:
    with services().session_factory() as session:
        return _workflow(session, organization_id, row_id)
