"""Members of the caller's current organization: add, change, remove; never the last admin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.auth.sessions import revoke_user_tokens
from api.errors import abort
from api.organizations.organization import current_membership
from api.pagination import paginate
from models.identity import ApiKey, Membership, User

MEMBER_NOT_FOUND = "Member not found"


def list_members(
    session: Session, principal: Principal, organization_id: uuid.UUID, page: int, page_size: int
) -> dict[str, Any]:
    current_membership(session, principal, organization_id)
    statement = (
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id)
        .order_by(Membership.created_at, User.username)
    )
    return paginate(session, statement, page, page_size, "members")


def add_member(
    session: Session, principal: Principal, organization_id: uuid.UUID, data: dict[str, Any]
) -> Membership:
    current_membership(session, principal, organization_id)
    identifier = (data.get("username") or data.get("email") or "").strip().lower()
    user = session.scalars(
        select(User).where(
            or_(func.lower(User.username) == identifier, func.lower(User.email) == identifier)
        )
    ).first()
    if user is None:
        abort(404, "No user with that username or email")
    if _membership(session, organization_id, user.id) is not None:
        abort(409, f"{user.username} is already a member of this organization")
    membership = Membership(organization_id=organization_id, user=user, role_name=data["role"])
    membership.approver_roles = data["approver_roles"]
    session.add(membership)
    session.flush()
    session.refresh(membership)
    record_audit(
        session,
        "member_added",
        "membership",
        user.id,
        {
            "user_id": str(user.id),
            "username": user.username,
            "role": membership.role_name,
            "approver_roles": membership.approver_roles,
        },
    )
    return membership


def update_member(
    session: Session,
    principal: Principal,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    changes: dict[str, Any],
) -> Membership:
    current_membership(session, principal, organization_id)
    admins = _lock_admins(session, organization_id)
    membership = _membership(session, organization_id, user_id, lock=True)
    if membership is None:
        abort(404, MEMBER_NOT_FOUND)
    new_role = changes.get("role", membership.role_name)
    if membership.role_name == "admin" and new_role != "admin" and len(admins) <= 1:
        abort(409, "Cannot demote the organization's last admin")
    diff = {
        name: {"from": getattr(membership, attribute), "to": changes[name]}
        for name, attribute in (("role", "role_name"), ("approver_roles", "approver_roles"))
        if name in changes and getattr(membership, attribute) != changes[name]
    }
    membership.role_name = new_role
    membership.approver_roles = changes.get("approver_roles", membership.approver_roles)
    if diff:
        session.flush()
        session.refresh(membership)
        record_audit(
            session,
            "member_role_changed",
            "membership",
            user_id,
            {"user_id": str(user_id), "username": membership.user.username, **diff},
        )
    return membership


def remove_member(
    session: Session, principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    current_membership(session, principal, organization_id)
    admins = _lock_admins(session, organization_id)
    membership = _membership(session, organization_id, user_id, lock=True)
    if membership is None:
        abort(404, MEMBER_NOT_FOUND)
    if membership.role_name == "admin" and len(admins) <= 1:
        abort(409, "Cannot remove the organization's last admin")
    now = datetime.now(UTC)
    # Their sessions and keys here end now; being re-added must not revive them.
    revoke_user_tokens(session, user_id, now, organization_id=organization_id)
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.organization_id == organization_id,
            ApiKey.user_id == user_id,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    record_audit(
        session,
        "member_removed",
        "membership",
        user_id,
        {
            "user_id": str(user_id),
            "username": membership.user.username,
            "role": membership.role_name,
        },
    )
    session.delete(membership)


def _membership(
    session: Session, organization_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False
) -> Membership | None:
    statement = select(Membership).where(
        Membership.organization_id == organization_id, Membership.user_id == user_id
    )
    if lock:
        statement = statement.with_for_update(of=Membership)
    return session.scalars(statement).first()


def _lock_admins(session: Session, organization_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the admin rows, always first and in id order, so concurrent demotions or
    removals serialise (neither can pass a stale count) without deadlocking."""
    return list(
        session.scalars(
            select(Membership.id)
            .where(Membership.organization_id == organization_id, Membership.role_name == "admin")
            .order_by(Membership.id)
            .with_for_update()
        ).all()
    )
