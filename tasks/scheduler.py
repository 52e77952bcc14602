"""workflows.fire_schedules: start the workflow of every due cron schedule, once per due time.

Each batch is one transaction: the due schedules are claimed with
`FOR UPDATE SKIP LOCKED` (models.schedule_repository), advanced past now, and
their executions inserted, then committed together. A replica racing on the
same rows skips them; a replica that dies before committing fired nothing and
moved nothing. After downtime a schedule fires once for all the due times it
missed (`advance`). The execution runs the schedule's workflow slug at its
enabled version; a slug with no enabled version is skipped (logged).
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.execution import DispatchOutbox
from models.schedule_repository import advance, claim_due_schedules
from models.workflow import Schedule, Workflow
from tasks import runtime
from tasks.dispatch import Ticket
from tasks.launch import start_execution

log = structlog.get_logger(__name__)

FIRE_SCHEDULES = "workflows.fire_schedules"
BATCH_SIZE = 100
WORKER_TYPE = "scheduler"
TRIGGER_TYPE = "schedule"


def fire_due_schedules(rt: runtime.Runtime, now: datetime | None = None) -> int:
    """Fire one batch of due schedules; returns how many executions were started."""
    now = now or datetime.now(UTC)
    tickets: list[DispatchOutbox] = []
    with rt.unit_of_work() as uow:
        session = uow.session
        for schedule in claim_due_schedules(session, now, BATCH_SIZE):
            due = advance(schedule, now)
            if due is None:
                continue
            ticket = _fire(session, schedule, due, now)
            if ticket is not None:
                tickets.append(ticket)
        uow.commit()
    if tickets:
        rt.publisher.publish(Ticket.from_row(row) for row in tickets)
    return len(tickets)


def _fire(
    session: Session, schedule: Schedule, due: datetime, now: datetime
) -> DispatchOutbox | None:
    workflow = session.scalars(
        select(Workflow).where(
            Workflow.organization_id == schedule.organization_id,
            Workflow.workflow_id == schedule.workflow_id,
            Workflow.enabled.is_(True),
        )
    ).first()
    if workflow is None:
        log.info(
            "schedule_skipped_no_enabled_version",
            schedule_id=str(schedule.id),
            workflow_id=schedule.workflow_id,
            due_at=due.isoformat(),
        )
        return None
    launch = start_execution(
        session,
        workflow,
        dict(schedule.payload or {}),
        now=now,
        trigger_type=TRIGGER_TYPE,
        created_by=schedule.created_by,
    )
    log.info(
        "schedule_fired",
        schedule_id=str(schedule.id),
        workflow_id=workflow.workflow_id,
        execution_id=str(launch.execution_id),
        due_at=due.isoformat(),
    )
    return launch.ticket
