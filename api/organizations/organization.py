"""Organizations seen by a caller: only their own, and by id only their current one."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.errors import abort
from api.pagination import paginate
from models.identity import Membership, Organization, User

NOT_FOUND = "Organization not found"


def organization_slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "org"
    return f"{base}-{secrets.token_hex(4)}"


def as_view(organization: Organization, role: str) -> dict[str, Any]:
    """An organization as its member sees it: with their role."""
    return {
        "id": organization.id,
        "name": organization.name,
        "slug": organization.slug,
        "description": organization.description,
        "role": role,
        "created_at": organization.created_at,
        "updated_at": organization.updated_at,
    }


def create_organization(
    session: Session, owner: User, name: str, description: str | None = None
) -> Membership:
    """A new organization with `owner` as its admin (their default if they had none)."""
    organization = Organization(name=name, slug=organization_slug(name), description=description)
    membership = Membership(organization=organization, user=owner, role_name="admin")
    membership.approver_roles = []
    session.add_all([organization, membership])
    if owner.default_organization_id is None:
        session.flush()
        owner.default_organization_id = organization.id
    session.flush()
    session.refresh(organization)  # server-side timestamps
    record_audit(
        session,
        "organization_created",
        "organization",
        organization.id,
        {"name": name},
        organization_id=organization.id,
        user_id=owner.id,
    )
    return membership


def list_organizations(
    session: Session, principal: Principal, page: int, page_size: int
) -> dict[str, Any]:
    statement = (
        select(Membership)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == principal.user_id)
        .order_by(Organization.name, Organization.id)
    )
    if principal.kind == "api_key":  # a key is bound to one organization
        statement = statement.where(Membership.organization_id == principal.organization_id)
    result = paginate(session, statement, page, page_size, "organizations")
    memberships = result["organizations"]
    result["organizations"] = [as_view(m.organization, m.role_name) for m in memberships]
    return result


def current_membership(
    session: Session, principal: Principal, organization_id: uuid.UUID
) -> Membership:
    """The caller's membership of `organization_id`, which must be their current organization."""
    if organization_id != principal.organization_id:
        abort(404, NOT_FOUND)
    membership = session.scalars(
        select(Membership).where(
            Membership.organization_id == organization_id,
            Membership.user_id == principal.user_id,
        )
    ).first()
    if membership is None:
        abort(404, NOT_FOUND)
    return membership


def update_organization(
    session: Session, principal: Principal, organization_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    membership = current_membership(session, principal, organization_id)
    organization = membership.organization
    diff = {
        name: {"from": getattr(organization, name), "to": value}
        for name, value in changes.items()
        if getattr(organization, name) != value
    }
    for name, value in changes.items():
        setattr(organization, name, value)
    if diff:
        session.flush()
        session.refresh(organization)
        record_audit(session, "organization_updated", "organization", organization.id, diff)
    return as_view(organization, membership.role_name)


def delete_organization(session: Session, principal: Principal, organization_id: uuid.UUID) -> None:
    membership = current_membership(session, principal, organization_id)
    entry = record_audit(
        session,
        "organization_deleted",
        "organization",
        organization_id,
        {"name": membership.organization.name},
    )
    # The organization's own log goes with it; this entry is kept for operators.
    entry.organization_id = None
    session.flush()
    session.execute(delete(Organization).where(Organization.id == organization_id))
