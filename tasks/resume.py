"""Waking executions that wait for an event (SPEC §2 `wait`), in the event's transaction.

A waiting execution takes an event of its type when the wait's `match`
(values rendered when the wait began) holds on the event's payload, or always
when it has no `match`. The payload is merged into its context and the flow
continues after the wait step. Time-outs and timer waits are fired by the
resumer job, not here.

`resume_after_approval` is the same for an approval decision, for the
approvals API and the expiry job to call.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.condition import evaluate
from engine.context import approval_context, deep_merge, merge_event
from engine.definition import Definition
from engine.machine import decide_after_approval, decide_after_wait
from engine.state import ApprovalStatus, ExecutionStatus
from models.execution import Approval, Event, Execution, Wait
from models.prepared import PreparedStatement, execute_prepared
from tasks.applied import Applied
from tasks.transition import current_result, wake

# Run for every event (most wake nothing): prepared once per connection. One event
# wakes at most 1000 waits in its transaction.
_OPEN_EVENT_WAITS = PreparedStatement(
    "iw_open_event_waits",
    "SELECT id FROM waits WHERE organization_id = %(organization_id)s AND kind = 'event'"
    " AND status = 'waiting' AND event_type = %(event_type)s"
    " ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED",
)


def resume_event_waits(session: Session, event: Event, *, now: datetime) -> list[Applied]:
    """Resolve every open wait this event satisfies; returns what to publish and record
    after commit."""
    # Most events wake nothing: lock the open waits' ids with a plain Core query
    # and only then load them as objects.
    wait_ids = [
        row[0]
        for row in execute_prepared(
            session.connection(),
            [_OPEN_EVENT_WAITS],
            {"organization_id": event.organization_id, "event_type": event.event_type},
        )
    ]
    if not wait_ids:
        return []
    waits = session.scalars(
        select(Wait).where(Wait.id.in_(wait_ids)).order_by(Wait.created_at)
    ).all()
    resumed: list[Applied] = []
    for wait in waits:
        if not _matches(wait, event):
            continue
        applied = _resume(session, wait, event, now)
        if applied is not None:
            resumed.append(applied)
    return resumed


def _matches(wait: Wait, event: Event) -> bool:
    if not wait.match:
        return True
    try:
        # Values were rendered when the wait began: evaluate them as they are.
        return evaluate(wait.match, event.payload, render=lambda value: value)
    except Exception:  # an unevaluable match does not match
        return False


def _resume(session: Session, wait: Wait, event: Event, now: datetime) -> Applied | None:
    execution = session.scalars(
        select(Execution).where(Execution.id == wait.execution_id).with_for_update()
    ).first()
    if execution is None or execution.attempt_group != wait.attempt_group:
        return None
    if execution.status not in (ExecutionStatus.WAITING, ExecutionStatus.PAUSED):
        return None
    definition = Definition.from_dict(execution.definition)
    if not definition.has_step(wait.step_id):
        return None
    step = definition.step(wait.step_id)
    wait.status = "resolved"
    wait.resolved_event_id = event.id
    wait.resolved_at = now
    context = merge_event(execution.context, event.event_type, event.payload, step_id=step.id)
    decision = decide_after_wait(definition, step, False, current_result(execution))
    return wake(session, execution, definition, step, decision, now, Applied("resumed"), context)


def resume_after_approval(
    session: Session,
    approval: Approval,
    *,
    status: ApprovalStatus,
    approver: str | None,
    reason: str | None,
    now: datetime,
) -> Applied | None:
    """Carry a decided (or expired) approval into its execution, in the caller's transaction.

    The caller has set the approval row's status and locked nothing else; this
    locks the execution, records `approvals.<step_id>` in its context and applies
    the engine's decision (next step, completion, ...). Returns the tickets to
    publish and the metrics to record after commit (`Applied.tickets`,
    `tasks.transition.record_metrics`); None when the execution no longer waits
    on this approval.
    """
    execution = session.scalars(
        select(Execution).where(Execution.id == approval.execution_id).with_for_update()
    ).first()
    if execution is None or execution.attempt_group != approval.attempt_group:
        return None
    if execution.status not in (ExecutionStatus.WAITING, ExecutionStatus.PAUSED):
        return None
    if execution.current_step_id != approval.step_id:
        return None
    definition = Definition.from_dict(execution.definition)
    step = definition.step(approval.step_id)
    update = approval_context(
        step.id, status=status.value, approver=approver, reason=reason, decided_at=now
    )
    context = deep_merge(execution.context, update)
    decision = decide_after_approval(definition, step, status, current_result(execution))
    applied = Applied("approval_" + status.value)
    return wake(session, execution, definition, step, decision, now, applied, context)
