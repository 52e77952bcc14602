"""Approval decisions and the approval expiry job (SPEC §2 Approvals, §5).

`decide` is the one code path that settles a pending approval: the approvals
API (approve/reject) and `workflows.expire_approvals` (expired) both call it in
their own transaction, with the approval row already locked by the caller. It
writes the decision on the row and carries it into the execution through
`tasks.resume.resume_after_approval`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import structlog
from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.state import ApprovalStatus
from models.execution import Approval
from monitoring import metrics
from tasks import runtime
from tasks.dispatch import Ticket, is_immediate
from tasks.resume import resume_after_approval
from tasks.transition import Applied, record_metrics

log = structlog.get_logger(__name__)

EXPIRE_APPROVALS = "workflows.expire_approvals"
BATCH_SIZE = 200
WORKER_TYPE = "approval_expiration"


def decide(
    session: Session,
    approval: Approval,
    status: ApprovalStatus,
    *,
    now: datetime,
    approver: str | None = None,
    decided_by: uuid.UUID | None = None,
    reason: str | None = None,
) -> Applied | None:
    """Settle a pending approval the caller has locked; returns what to publish/record
    after commit, or None when the execution no longer waits on it (the approval is
    then marked cancelled)."""
    approval.status = status.value
    approval.decided_at = now
    approval.decided_by = decided_by
    approval.decision_reason = reason
    applied = resume_after_approval(
        session, approval, status=status, approver=approver, reason=reason, now=now
    )
    if applied is None:
        approval.status = "cancelled"
        return None
    slug = approval.workflow_id
    requested = approval.requested_at or now
    duration = max((now - requested).total_seconds(), 0.0)
    label = status.value
    applied.after_commit.append(lambda: metrics.record_approval(slug, label, duration))
    return applied


def expire_due(rt: runtime.Runtime, now: datetime | None = None) -> int:
    """Expire one batch of pending approvals whose `expires_at` passed."""
    now = now or datetime.now(UTC)
    applied_all: list[Applied] = []
    with rt.unit_of_work() as uow:
        session = uow.session
        due = session.scalars(
            select(Approval)
            .where(
                Approval.status == ApprovalStatus.PENDING.value,
                Approval.expires_at.is_not(None),
                Approval.expires_at <= now,
            )
            .order_by(Approval.expires_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).all()
        for approval in due:
            applied = decide(session, approval, ApprovalStatus.EXPIRED, now=now)
            if applied is None:
                log.info("approval_expired_without_execution", approval_id=str(approval.id))
                continue
            applied_all.append(applied)
        uow.commit()
    publish_applied(rt, applied_all)
    return len(due)


def publish_applied(rt: runtime.Runtime, applied_all: list[Applied]) -> None:
    """After commit: publish the immediate tickets and record the metrics."""
    rows = [row for applied in applied_all for row in applied.tickets if is_immediate(row)]
    if rows:
        rt.publisher.publish(Ticket.from_row(row) for row in rows)
    for applied in applied_all:
        record_metrics(applied)


@shared_task(name=EXPIRE_APPROVALS, ignore_result=True)
def expire_approvals() -> int:
    rt = runtime.current()
    started = time.perf_counter()
    try:
        count = expire_due(rt)
    except Exception:
        metrics.record_job_run(WORKER_TYPE, "error", time.perf_counter() - started)
        raise
    metrics.record_job_run(WORKER_TYPE, "success", time.perf_counter() - started, items=count)
    return count
