"""Approvals: listing and reading them, and deciding them (approve/reject).

A decision locks the approval row (`SELECT ... FOR UPDATE`), so two concurrent
decisions are applied once: the second sees the first one's outcome and either
returns it (the same decision: idempotent) or answers 409 (the opposite one).
The decision, its effect on the execution (tasks.approvals.decide ->
tasks.resume.resume_after_approval), the notification it owes and the audit
entry share one transaction; the execution's next tickets and the task that
sends the notifications are published after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.dispatch import publish_after_commit, publisher
from api.errors import abort
from api.pagination import paginate
from api.services import services
from engine.state import ApprovalStatus
from models.execution import Approval
from models.identity import Membership
from tasks import approvals as approval_tasks
from tasks.applied import record_metrics

log = structlog.get_logger(__name__)

ADMIN_ROLE = "admin"


def _membership(session: Session, principal: Principal) -> Membership | None:
    return session.scalars(
        select(Membership).where(
            Membership.organization_id == principal.organization_id,
            Membership.user_id == principal.user_id,
        )
    ).first()


def _is_admin(principal: Principal, membership: Membership | None) -> bool:
    if membership is not None:
        return membership.role_name == ADMIN_ROLE
    return principal.role == ADMIN_ROLE


def _groups(membership: Membership | None) -> list[str]:
    if membership is None:
        return []
    return [str(group) for group in membership.approver_roles or []]


def list_approvals(principal: Principal, query: Mapping[str, Any]) -> dict[str, Any]:
    statement = select(Approval).where(Approval.organization_id == principal.organization_id)
    if query.get("status"):
        statement = statement.where(Approval.status == query["status"])
    if query.get("role"):
        statement = statement.where(Approval.approver_role == query["role"])
    if query.get("execution_id"):
        statement = statement.where(Approval.execution_id == query["execution_id"])
    with services().session_factory() as session:
        if query.get("mine"):
            membership = _membership(session, principal)
            if not _is_admin(principal, membership):
                statement = statement.where(Approval.approver_role.in_(_groups(membership)))
        statement = statement.order_by(Approval.requested_at.desc(), Approval.id)
        return paginate(session, statement, query["page"], query["page_size"], "approvals")


def _load(
    session: Session, organization_id: uuid.UUID, approval_id: uuid.UUID, *, lock: bool = False
) -> Approval:
    statement = select(Approval).where(
        Approval.id == approval_id, Approval.organization_id == organization_id
    )
    if lock:
        statement = statement.with_for_update()
    approval = session.scalars(statement).first()
    if approval is None:
        abort(404, "Approval not found")
    return approval


def _announce_after_commit(approval_id: uuid.UUID) -> None:
    """Ask a worker to send the decision's notifications (never from the request itself).

    The decision is already committed with its notification owed
    (`approvals.notify_due_at`): if this publish is lost, the approval expiry job
    sends it after tasks.approvals.NOTIFY_GRACE, so the request still succeeds.
    """
    try:
        publisher().send(approval_tasks.NOTIFY_APPROVAL, {"approval_id": str(approval_id)})
    except Exception as exc:  # any broker failure: the expiry job takes over
        log.warning(
            "approval_notification_publish_failed", approval_id=str(approval_id), error=repr(exc)
        )


def get_approval(organization_id: uuid.UUID, approval_id: uuid.UUID) -> Approval:
    with services().session_factory() as session:
        return _load(session, organization_id, approval_id)


def decide(
    principal: Principal, approval_id: uuid.UUID, status: ApprovalStatus, reason: str | None
) -> Approval:
    """Approve or reject, once: compare-and-set on the locked approval row."""
    now = datetime.now(UTC)
    with services().unit_of_work() as uow:
        session = uow.session
        approval = _load(session, principal.organization_id, approval_id, lock=True)
        membership = _membership(session, principal)
        if not _is_admin(principal, membership) and approval.approver_role not in _groups(
            membership
        ):
            abort(403, f"Only members of the approval group {approval.approver_role!r} may decide")
        if approval.status == status.value:
            uow.commit()  # nothing changed; ends the transaction without expiring the row
            return approval  # the same decision again: idempotent
        if approval.status != ApprovalStatus.PENDING.value:
            abort(
                409,
                f"The approval is already {approval.status}",
                {"status": [approval.status]},
            )
        if approval.expires_at is not None and approval.expires_at <= now:
            abort(409, "The approval has expired", {"status": ["expired"]})
        approver = membership.user.username if membership is not None else str(principal.user_id)
        applied = approval_tasks.decide(
            session,
            approval,
            status,
            now=now,
            approver=approver,
            decided_by=principal.user_id,
            reason=reason,
        )
        if applied is None:
            # The execution no longer waits on it (cancelled, retried, ...).
            uow.commit()
            abort(409, "The execution no longer waits on this approval", {"status": ["cancelled"]})
        record_audit(
            session,
            f"approval_{status.value}",
            "approval",
            approval.id,
            {
                "status": {"from": ApprovalStatus.PENDING.value, "to": status.value},
                "execution_id": str(approval.execution_id),
                "step_id": approval.step_id,
                "reason": reason,
            },
            principal=principal,
        )
        publish_after_commit(uow, applied.tickets)
        uow.after_commit(lambda: record_metrics(applied))
        decided_id = approval.id
        uow.after_commit(lambda: _announce_after_commit(decided_id))
        session.flush()
        session.refresh(approval)
        uow.commit()
    return approval
