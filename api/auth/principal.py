"""Who is calling: resolved from a Bearer JWT or an X-API-Key, checked per endpoint."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from flask import g, request

from api.auth.revocation import is_access_token_revoked
from api.auth.tokens import AccessClaims, TokenError, VerifiedTokens, hash_token
from api.errors import abort
from api.services import autocommit_connection, services
from models.permission import permissions_of
from models.prepared import PreparedStatement, execute_prepared

F = TypeVar("F", bound=Callable[..., Any])

_verified_tokens = VerifiedTokens()

# TokenError reasons -> the bounded `reason` label of auth_failures_total.
_FAILURE_LABELS = {
    "expired": "expired_token",
    "expired_api_key": "expired_token",
    "revoked_api_key": "revoked_key",
}

# last_used_at is a hint, not an audit trail: refresh it at most this often.
API_KEY_TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    permissions: frozenset[str]
    api_key_id: uuid.UUID | None = None
    # Set for Bearer tokens, so that logout can revoke the token it was called with.
    token_id: str | None = None
    token_expires_at: datetime | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def kind(self) -> str:
        return "api_key" if self.api_key_id else "user"


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        principal = authenticate()
    return cast(Principal, principal)


def authenticate() -> Principal:
    """Resolve the caller or answer 401; the result is cached on `g`."""
    from monitoring import metrics

    api_key = request.headers.get("X-API-Key")
    header = request.headers.get("Authorization", "")
    method = "api_key" if api_key else "jwt"
    try:
        if api_key:
            principal = _from_api_key(api_key)
        elif header.startswith("Bearer "):
            principal = _from_access_token(header[len("Bearer ") :].strip())
        else:
            metrics.record_auth_failure("missing_credentials")
            abort(401, "Authentication required: send a Bearer token or an X-API-Key")
    except TokenError as exc:
        metrics.record_token_validation(valid=False)
        metrics.record_auth_failure(_FAILURE_LABELS.get(exc.reason, "invalid_token"))
        metrics.record_auth_request(method, "failure")
        abort(401, str(exc))
    metrics.record_token_validation(valid=True)
    metrics.record_auth_request(method, "success")
    g.principal = principal
    return principal


def access_claims(token: str) -> AccessClaims:
    """The token's verified claims; the rate limiter asks first, then authentication,
    and both get the claims verified once per process (VerifiedTokens)."""
    return _verified_tokens.decode(token, secret=services().settings.jwt_secret)


def _from_access_token(token: str) -> Principal:
    claims = access_claims(token)
    if is_access_token_revoked(claims.token_id):
        raise TokenError("revoked", "The access token has been revoked")
    standing = _standing(claims.user_id, claims.organization_id)
    if standing is None:
        raise TokenError("not_a_member", "The token's organization membership no longer exists")
    if not standing.is_active:
        raise TokenError("inactive_user", "The user is disabled")
    # iat has whole seconds: compare at that precision so tokens issued by the
    # password change itself stay valid.
    changed_at = standing.password_changed_at
    if changed_at is not None and claims.issued_at.timestamp() < int(changed_at.timestamp()):
        raise TokenError("password_changed", "The password changed after this token was issued")
    return Principal(
        user_id=claims.user_id,
        organization_id=claims.organization_id,
        role=standing.role_name,
        permissions=permissions_of(standing.role_name),
        token_id=claims.token_id,
        token_expires_at=claims.expires_at,
    )


# Read at every request (a removed member or a disabled user loses access at once),
# so only the three columns the checks need, in one prepared statement, on an
# autocommit connection.
_STANDING = PreparedStatement(
    "iw_member_standing",
    "SELECT m.role_name, u.is_active, u.password_changed_at"
    " FROM memberships m JOIN users u ON u.id = m.user_id"
    " WHERE m.user_id = %(user_id)s AND m.organization_id = %(organization_id)s",
)


@dataclass(frozen=True, slots=True)
class _Standing:
    role_name: str
    is_active: bool
    password_changed_at: datetime | None


def _standing(user_id: uuid.UUID, organization_id: uuid.UUID) -> _Standing | None:
    row = execute_prepared(
        autocommit_connection(),
        [_STANDING],
        {"user_id": user_id, "organization_id": organization_id},
    ).first()
    return None if row is None else _Standing(*row)


# Per request for API-key callers (event senders, typically): the key, its
# creator's role and standing in one prepared statement, on an autocommit
# connection; last_used_at is written at most once a minute.
_API_KEY_CALLER = PreparedStatement(
    "iw_api_key_caller",
    "SELECT k.id, k.user_id, k.organization_id, k.scopes, k.revoked_at, k.expires_at,"
    " k.last_used_at, m.role_name"
    " FROM api_keys k"
    " JOIN memberships m ON m.user_id = k.user_id AND m.organization_id = k.organization_id"
    " JOIN users u ON u.id = k.user_id"
    " WHERE k.key_hash = %(key_hash)s AND u.is_active",
)
_TOUCH_API_KEY = PreparedStatement(
    "iw_touch_api_key", "UPDATE api_keys SET last_used_at = %(now)s WHERE id = %(key_id)s"
)


def _from_api_key(raw_key: str) -> Principal:
    now = datetime.now(UTC)
    connection = autocommit_connection()
    row: Any = execute_prepared(
        connection, [_API_KEY_CALLER], {"key_hash": hash_token(raw_key)}
    ).first()
    if row is None:
        raise TokenError("unknown_api_key", "The API key is not valid")
    key_id, user_id, organization_id, scopes, revoked_at, expires_at, last_used_at, role = row
    if revoked_at is not None:
        raise TokenError("revoked_api_key", "The API key has been revoked")
    if expires_at is not None and expires_at <= now:
        raise TokenError("expired_api_key", "The API key has expired")
    if last_used_at is None or now - last_used_at > API_KEY_TOUCH_INTERVAL:
        execute_prepared(connection, [_TOUCH_API_KEY], {"now": now, "key_id": key_id})
    # A key never holds more than its creator holds today.
    return Principal(
        user_id=user_id,
        organization_id=organization_id,
        role=role,
        permissions=frozenset(scopes) & permissions_of(role),
        api_key_id=key_id,
    )


def requires(permission: str) -> Callable[[F], F]:
    """Authenticate the caller and demand one permission (403 without it)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.can(permission):
                from monitoring import metrics

                metrics.record_auth_failure("forbidden")
                abort(403, f"Missing permission: {permission}")
            return view(*args, **kwargs)

        wrapper._required_permission = permission  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def authenticated(view: F) -> F:
    """Any authenticated principal."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_principal()
        return view(*args, **kwargs)

    return cast(F, wrapper)


def user_session(view: F) -> F:
    """A user signed in with a Bearer token: API keys may not mint tokens or manage the account."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_principal().kind == "api_key":
            abort(403, "This endpoint needs a user's Bearer token, not an API key")
        return view(*args, **kwargs)

    return cast(F, wrapper)
