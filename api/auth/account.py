"""A user's account: registration, home organization, password change, who am I."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.passwords import hash_password
from api.auth.principal import Principal
from api.auth.sessions import TokenPair, issue_token_pair
from api.errors import abort
from api.organizations.organization import create_organization
from models.identity import Membership, User


@dataclass(frozen=True)
class Registration:
    user: User
    membership: Membership
    tokens: TokenPair


def register_user(session: Session, data: dict[str, Any], now: datetime) -> Registration:
    """A new user, admin of a new organization of their own, signed in."""
    _refuse_taken(session, data["username"], data["email"])
    user = User(
        username=data["username"],
        email=data["email"],
        password_hash=hash_password(data["password"]),
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        is_active=True,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # a concurrent registration won the race
        abort(409, "The username or email is already registered")
    session.refresh(user)
    membership = create_personal_organization(session, user)
    record_audit(
        session,
        "user_registered",
        "user",
        user.id,
        {"username": user.username, "email": user.email},
        organization_id=membership.organization_id,
        user_id=user.id,
    )
    tokens = issue_token_pair(
        session,
        user_id=user.id,
        organization_id=membership.organization_id,
        role=membership.role_name,
        now=now,
    )
    return Registration(user=user, membership=membership, tokens=tokens)


def create_personal_organization(session: Session, user: User) -> Membership:
    return create_organization(session, user, f"{user.username}'s organization")


def find_home_membership(session: Session, user: User) -> Membership | None:
    """Where a sign-in lands: the default organization if still a member, else the oldest."""
    memberships = session.scalars(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.created_at)
    ).all()
    for membership in memberships:
        if membership.organization_id == user.default_organization_id:
            return membership
    return memberships[0] if memberships else None


def memberships_of(session: Session, user_id: uuid.UUID) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at, Membership.id)
        ).all()
    )


def switch_organization(
    session: Session, principal: Principal, organization_id: uuid.UUID, now: datetime
) -> TokenPair:
    membership = session.scalars(
        select(Membership).where(
            Membership.user_id == principal.user_id,
            Membership.organization_id == organization_id,
        )
    ).first()
    if membership is None:
        abort(404, "Organization not found")
    return issue_token_pair(
        session,
        user_id=principal.user_id,
        organization_id=organization_id,
        role=membership.role_name,
        now=now,
    )


def describe_me(session: Session, principal: Principal) -> dict[str, Any]:
    user = session.get(User, principal.user_id)
    if user is None:
        abort(401, "The user no longer exists")
    memberships = memberships_of(session, principal.user_id)
    current = next((m for m in memberships if m.organization_id == principal.organization_id), None)
    if current is None:
        abort(401, "The token's organization membership no longer exists")
    if principal.kind == "api_key":  # a key sees its own organization only
        memberships = [current]
    return {
        "user_id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "organization_id": principal.organization_id,
        "role": principal.role,
        "approver_roles": list(current.approver_roles),
        "permissions": sorted(principal.permissions),
        "organizations": [
            {
                "id": m.organization_id,
                "name": m.organization.name,
                "slug": m.organization.slug,
                "role": m.role_name,
            }
            for m in memberships
        ],
        "api_key_id": principal.api_key_id,
    }


def _refuse_taken(session: Session, username: str, email: str) -> None:
    errors: dict[str, list[str]] = {}
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        errors["username"] = ["This username is already registered."]
    if session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
        errors["email"] = ["This email is already registered."]
    if errors:
        abort(409, "The username or email is already registered", errors)
