"""Sign-in sessions: access + refresh token pairs, refresh rotation and revocation.

A refresh token belongs to a family (one sign-in). Using it rotates it: it gets
`rotated_at` and a new token of the same family is issued. Presenting a token
that was already rotated (or revoked) means it was stolen or replayed, so the
whole family is revoked and the caller must sign in again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.auth.tokens import hash_token, issue_access_token, new_opaque_token
from api.services import settings
from models.identity import Membership, RefreshToken
from models.permission import permissions_of


class RefreshTokenError(Exception):
    """The refresh token cannot be used; `reason` is a bounded label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret


def issue_token_pair(
    session: Session,
    *,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    role: str,
    now: datetime,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    """A new access token and a stored (hashed) refresh token; a new family unless given."""
    config = settings()
    access_token = issue_access_token(
        secret=config.jwt_secret,
        user_id=user_id,
        organization_id=organization_id,
        role=role,
        permissions=permissions_of(role),
        now=now,
        ttl=config.access_token_ttl,
    )
    refresh_token = new_opaque_token()
    session.add(
        RefreshToken(
            user_id=user_id,
            organization_id=organization_id,
            family_id=family_id or uuid.uuid4(),
            token_hash=hash_token(refresh_token),
            expires_at=now + config.refresh_token_ttl,
        )
    )
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int(config.access_token_ttl.total_seconds()),
    )


def rotate_refresh_token(session: Session, raw_token: str, now: datetime) -> TokenPair:
    """Exchange a refresh token for a new pair, or raise RefreshTokenError.

    On reuse the family is revoked before raising: the caller must commit anyway.
    """
    token = session.scalars(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_token(raw_token))
        .with_for_update()
    ).first()
    if token is None:
        raise RefreshTokenError("unknown", "The refresh token is not valid")
    if token.rotated_at is not None or token.revoked_at is not None:
        if token.revoked_at is None:
            record_audit(
                session,
                "refresh_token_reused",
                "user",
                token.user_id,
                {"family_id": str(token.family_id)},
                organization_id=token.organization_id,
                user_id=token.user_id,
            )
        revoke_family(session, token.family_id, now)
        raise RefreshTokenError(
            "reused", "The refresh token was already used; its session has been revoked"
        )
    if token.expires_at <= now:
        raise RefreshTokenError("expired", "The refresh token has expired")
    membership = session.scalars(
        select(Membership).where(
            Membership.user_id == token.user_id,
            Membership.organization_id == token.organization_id,
        )
    ).first()
    if membership is None or not membership.user.is_active:
        revoke_family(session, token.family_id, now)
        raise RefreshTokenError("not_a_member", "The session's organization membership has ended")
    token.rotated_at = now
    return issue_token_pair(
        session,
        user_id=token.user_id,
        organization_id=token.organization_id,
        role=membership.role_name,
        now=now,
        family_id=token.family_id,
    )


def revoke_family(session: Session, family_id: uuid.UUID, now: datetime) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_user_tokens(
    session: Session,
    user_id: uuid.UUID,
    now: datetime,
    organization_id: uuid.UUID | None = None,
) -> int:
    """Revoke every live refresh token of a user (in one organization if given)."""
    statement = update(RefreshToken).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
    )
    if organization_id is not None:
        statement = statement.where(RefreshToken.organization_id == organization_id)
    result = session.execute(statement.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def find_user_refresh_token(
    session: Session, user_id: uuid.UUID, raw_token: str
) -> RefreshToken | None:
    return session.scalars(
        select(RefreshToken).where(
            RefreshToken.token_hash == hash_token(raw_token), RefreshToken.user_id == user_id
        )
    ).first()


def end_sessions(
    session: Session, principal: Principal, raw_token: str | None, now: datetime
) -> int:
    """Logout: revoke the session of `raw_token` (if it is the caller's), else all of them."""
    if raw_token:
        token = find_user_refresh_token(session, principal.user_id, raw_token)
        revoked = revoke_family(session, token.family_id, now) if token else 0
    else:
        revoked = revoke_user_tokens(session, principal.user_id, now)
    record_audit(
        session,
        "logout",
        "user",
        principal.user_id,
        {"scope": "session" if raw_token else "all", "revoked_tokens": revoked},
    )
    return revoked
