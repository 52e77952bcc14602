"""Approval decisions and the approval expiry job (SPEC §2 Approvals, §5).

`decide` is the one code path that settles a pending approval: the approvals
API (approve/reject) and `workflows.expire_approvals` (expired) both call it in
their own transaction, with the approval row already locked by the caller. It
writes the decision on the row and carries it into the execution through
`tasks.resume.resume_after_approval`.

Decisions and expiries are announced by email to the approval group and to the
member who started the execution (SPEC §2, "notifications on request/decision/
expiry"; the request itself is announced by the workflow's own `notify` items,
which can link to `approval_url`). The announcement is owed durably:
`decide` sets `approval.notify_due_at` in the deciding transaction, and the
notifications go out only after that commit, from a worker: the
`workflows.notify_approval` task the API publishes after its commit, or the
expiry job, which sends every notification still owed once it is due (a lost
publish, a worker that died, a failed delivery being retried). Deliveries go
through the Notifier (recorded in `notifications`, each one in the effects
ledger), so a delivery repeated after a crash is never sent twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import StepError
from engine.port import Notification
from engine.state import ApprovalStatus
from models.execution import Approval, Execution
from models.identity import User
from monitoring import metrics
from tasks import runtime
from tasks.applied import Applied, record_metrics
from tasks.dispatch import Ticket, is_immediate
from tasks.ledger import EffectsLedger, LedgerScope
from tasks.notifier import Notifier
from tasks.resume import resume_after_approval

log = structlog.get_logger(__name__)

EXPIRE_APPROVALS = "workflows.expire_approvals"
NOTIFY_APPROVAL = "workflows.notify_approval"
BATCH_SIZE = 200
WORKER_TYPE = "approval_expiration"

# The task published after an API decision normally sends its notifications at
# once; the expiry job only takes over a notification this long overdue.
NOTIFY_GRACE = timedelta(seconds=30)
# Approvals announced per expiry-job run: the job must stay short.
NOTIFY_BATCH_SIZE = 20
# A failed delivery is retried after as long as it has been failing (bounded),
# and abandoned, loudly, a day after the decision.
NOTIFY_RETRY_MIN = timedelta(seconds=15)
NOTIFY_RETRY_MAX = timedelta(hours=1)
NOTIFY_GIVE_UP = timedelta(days=1)


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
    # An expiry is announced by the job that expired it, right after its commit.
    approval.notify_due_at = now if status is ApprovalStatus.EXPIRED else now + NOTIFY_GRACE
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


# --- decision and expiry notifications -------------------------------------------------
def decision_notice(
    approval: Approval, *, decider: str | None, requester: str | None, public_url: str
) -> Notification:
    """The email announcing a settled approval, to its group and the execution's starter."""
    status = approval.status
    subject_of = (
        f"{approval.entity_type} {approval.entity_id}"
        if approval.entity_type and approval.entity_id
        else f"step {approval.step_id}"
    )
    if status == ApprovalStatus.EXPIRED.value:
        expired_at = approval.expires_at or approval.decided_at
        when = f" at {expired_at:%Y-%m-%d %H:%M} UTC" if expired_at is not None else ""
        outcome = f"expired{when} without a decision."
    else:
        outcome = f"was {status} by {decider or 'an unknown user'}."
        if approval.decision_reason:
            outcome += f" Reason: {approval.decision_reason}"
    lines = [
        f"The approval request for {subject_of} ({approval.approver_role}) {outcome}",
        f"Requested because: {approval.reason}" if approval.reason else "",
        f"Workflow {approval.workflow_id}, step {approval.step_id}, "
        f"execution {approval.execution_id}.",
        f"Approval: {public_url.rstrip('/')}/approvals/{approval.id}",
    ]
    recipients = [f"role:{approval.approver_role}"]
    if requester:
        recipients.append(requester)
    return Notification(
        recipients=tuple(recipients),
        message="\n".join(line for line in lines if line),
        subject=f"Approval {status}: {subject_of}",
        # One announcement per approval and outcome: the ledger makes a retry resend
        # only the deliveries that failed.
        idempotency_key=f"approval:{approval.id}:{status}",
    )


def retry_notification_at(approval: Approval, now: datetime) -> datetime | None:
    """When to try a failed announcement again; None once it is no longer worth sending."""
    decided = approval.decided_at or now
    failing_for = now - decided
    if failing_for >= NOTIFY_GIVE_UP:
        return None
    return now + min(max(failing_for, NOTIFY_RETRY_MIN), NOTIFY_RETRY_MAX)


def notify_decision(rt: runtime.Runtime, approval_id: uuid.UUID) -> bool:
    """Send one approval's owed notifications now, due or not (the task published after a
    decision); False when nothing is owed or another worker is sending them."""
    with rt.session_factory() as claim:
        approval = claim.scalars(
            select(Approval)
            .where(Approval.id == approval_id, Approval.notify_due_at.is_not(None))
            .with_for_update(skip_locked=True)
        ).first()
        if approval is None:
            return False
        sent = _announce(rt, claim, approval)
        claim.commit()
    return sent


def notify_owed(rt: runtime.Runtime, now: datetime | None = None) -> int:
    """Send the owed notifications that are due, one approval at a time, at most
    NOTIFY_BATCH_SIZE; returns how many approvals were announced."""
    now = now or datetime.now(UTC)
    announced = 0
    for _ in range(NOTIFY_BATCH_SIZE):
        with rt.session_factory() as claim:
            approval = claim.scalars(
                select(Approval)
                .where(Approval.notify_due_at.is_not(None), Approval.notify_due_at <= now)
                .order_by(Approval.notify_due_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if approval is None:
                break
            announced += _announce(rt, claim, approval)
            claim.commit()
    return announced


def _announce(rt: runtime.Runtime, claim: Session, approval: Approval) -> bool:
    """Deliver while `claim` holds the approval row, so no other worker announces it at the
    same time; the deliveries commit on their own session (the ledger commits each one).
    Leaves the row's new `notify_due_at` for the caller to commit.

    Only a repeated approve/reject of the same, already decided approval waits for the
    row meanwhile (the expiry job locks pending rows only, and skips locked ones).
    """
    now = datetime.now(UTC)
    decider = claim.scalar(select(User.username).where(User.id == approval.decided_by))
    requester = claim.scalar(
        select(User.email)
        .join(Execution, Execution.created_by == User.id)
        .where(Execution.id == approval.execution_id)
    )
    notice = decision_notice(
        approval, decider=decider, requester=requester, public_url=rt.settings.public_url
    )
    with rt.session_factory() as session:
        scope = LedgerScope(approval.organization_id, approval.execution_id, approval.step_id)
        notifier = Notifier(
            session,
            rt.settings,
            rt.outbound,
            EffectsLedger(session, scope),
            organization_id=approval.organization_id,
            execution_id=approval.execution_id,
            step_id=approval.step_id,
        )
        try:
            notifier.notify(notice)
        except StepError as exc:
            # Each failed delivery is already recorded (notifications, metrics).
            approval.notify_due_at = retry_notification_at(approval, now)
            if approval.notify_due_at is None:
                log.error(
                    "approval_notification_abandoned",
                    approval_id=str(approval.id),
                    error=exc.message,
                )
            else:
                log.warning(
                    "approval_notification_failed",
                    approval_id=str(approval.id),
                    error=exc.message,
                    retry_at=approval.notify_due_at.isoformat(),
                )
            return False
    approval.notify_due_at = None
    return True
