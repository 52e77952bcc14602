"""Password checks (sign-in, password change): every attempt recorded, failures throttled.

After `failed_login_limit` failures for one username within `failed_login_window`
(counted since its last successful sign-in) the username is refused with 429,
even with the right password, until the oldest counted failure leaves the window.
Refused attempts are recorded but not counted, so hammering does not extend it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.account import create_personal_organization, find_home_membership
from api.auth.passwords import hash_password, needs_rehash, verify_password
from api.auth.principal import Principal
from api.auth.sessions import TokenPair, issue_token_pair, revoke_user_tokens
from api.errors import abort
from api.services import settings
from models.identity import LoginAttempt, User

INVALID_CREDENTIALS = "Invalid username or password"
# Failure reasons that count towards throttling.
COUNTED_FAILURES = ("invalid_credentials", "invalid_current_password")


class LoginRefusedError(Exception):
    """A password check failed: 401/422 (wrong password) or 429 (throttled, with retry_after)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: int | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.errors = errors


@dataclass(frozen=True)
class SignIn:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    tokens: TokenPair


def find_user_by_login(session: Session, identifier: str) -> User | None:
    """The user whose username or email is `identifier`, case-insensitively."""
    key = identifier.strip().lower()
    return session.scalars(
        select(User).where(or_(func.lower(User.username) == key, func.lower(User.email) == key))
    ).first()


def throttle_retry_after(session: Session, username: str, now: datetime) -> int | None:
    """Seconds until `username` may try again, or None when it is not throttled."""
    config = settings()
    window_start = now - config.failed_login_window
    last_success = session.scalar(
        select(func.max(LoginAttempt.created_at)).where(
            LoginAttempt.username == username,
            LoginAttempt.succeeded.is_(True),
            LoginAttempt.created_at > window_start,
        )
    )
    since = max(window_start, last_success) if last_success else window_start
    failures = session.scalars(
        select(LoginAttempt.created_at)
        .where(
            LoginAttempt.username == username,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.reason.in_(COUNTED_FAILURES),
            LoginAttempt.created_at > since,
        )
        .order_by(LoginAttempt.created_at.desc())
        .limit(config.failed_login_limit)
    ).all()
    if len(failures) < config.failed_login_limit:
        return None
    frees_at = failures[-1] + config.failed_login_window
    return max(1, math.ceil((frees_at - now).total_seconds()))


def record_attempt(
    session: Session, username: str, now: datetime, *, succeeded: bool, reason: str | None
) -> None:
    session.add(
        LoginAttempt(
            username=username,
            ip_address=request.remote_addr,
            succeeded=succeeded,
            reason=reason,
            created_at=now,
        )
    )


def sign_in(session: Session, identifier: str, password: str, now: datetime) -> SignIn:
    """Check the password and open a session in the user's home organization.

    Raises LoginRefusedError after recording the attempt: the caller commits either way.
    """
    user = find_user_by_login(session, identifier)
    username = user.username.lower() if user else identifier.strip().lower()[:254]
    home = find_home_membership(session, user) if user else None
    organization_id = home.organization_id if home else None
    retry_after = throttle_retry_after(session, username, now)
    if retry_after is not None:
        _refuse(
            session, username, user, organization_id=organization_id, now=now, reason="throttled"
        )
        raise LoginRefusedError(
            429, f"Too many failed sign-ins; retry in {retry_after}s", retry_after=retry_after
        )
    valid = verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        _refuse(
            session,
            username,
            user,
            organization_id=organization_id,
            now=now,
            reason="invalid_credentials",
        )
        raise LoginRefusedError(401, INVALID_CREDENTIALS)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if home is None:  # removed from every organization: start afresh, as at registration
        home = create_personal_organization(session, user)
    record_attempt(session, username, now, succeeded=True, reason=None)
    record_audit(
        session,
        "login_success",
        "user",
        user.id,
        {"method": "password"},
        organization_id=home.organization_id,
        user_id=user.id,
    )
    tokens = issue_token_pair(
        session,
        user_id=user.id,
        organization_id=home.organization_id,
        role=home.role_name,
        now=now,
    )
    return SignIn(user_id=user.id, organization_id=home.organization_id, tokens=tokens)


def change_password(
    session: Session, principal: Principal, current: str, new: str, now: datetime
) -> TokenPair:
    """Replace the password, end every session, and open a fresh one for the caller.

    A wrong current password is a 422 on `current_password` (the caller is signed in,
    so 401 would wrongly tell a client its session ended); it counts as a failed
    sign-in so a stolen access token cannot be used to guess the password.
    """
    user = session.get(User, principal.user_id, with_for_update=True)
    if user is None:
        abort(401, "The user no longer exists")
    username = user.username.lower()
    retry_after = throttle_retry_after(session, username, now)
    if retry_after is not None:
        record_attempt(session, username, now, succeeded=False, reason="throttled")
        raise LoginRefusedError(
            429,
            f"Too many failed password checks; retry in {retry_after}s",
            retry_after=retry_after,
        )
    if not verify_password(user.password_hash, current):
        record_attempt(session, username, now, succeeded=False, reason="invalid_current_password")
        raise LoginRefusedError(
            422,
            "The current password is incorrect",
            errors={"current_password": ["The current password is incorrect."]},
        )
    if new == current:
        abort(422, "The request did not validate", {"new_password": ["Choose a new password."]})
    if new.lower() == username:
        abort(
            422,
            "The request did not validate",
            {"new_password": ["The password must not be the username."]},
        )
    user.password_hash = hash_password(new)
    user.password_changed_at = now
    revoked = revoke_user_tokens(session, user.id, now)
    record_audit(session, "password_changed", "user", user.id, {"revoked_sessions": revoked})
    return issue_token_pair(
        session,
        user_id=user.id,
        organization_id=principal.organization_id,
        role=principal.role,
        now=now,
    )


def _refuse(
    session: Session,
    username: str,
    user: User | None,
    *,
    organization_id: uuid.UUID | None,
    now: datetime,
    reason: str,
) -> None:
    record_attempt(session, username, now, succeeded=False, reason=reason)
    record_audit(
        session,
        "login_failure",
        "user",
        user.id if user else None,
        {"username": username, "reason": reason},
        organization_id=organization_id,
        user_id=user.id if user else None,
    )
