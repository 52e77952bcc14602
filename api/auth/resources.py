"""HTTP endpoints of /auth: register, sign in and out, refresh, me, password, organization."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

from api.auth import account, login, sessions
from api.auth.openapi import AUTHENTICATED_ERRORS, PUBLIC, error_responses, resource_blueprint
from api.auth.principal import authenticated, current_principal, user_session
from api.auth.revocation import revoke_access_token
from api.auth.schemas import (
    ChangePasswordSchema,
    LoginSchema,
    LogoutSchema,
    MeSchema,
    RefreshSchema,
    RegisterSchema,
    RegistrationSchema,
    SwitchOrganizationSchema,
    TokenPairSchema,
)
from api.errors import abort
from api.ratelimit import auth_rate_limit
from api.services import services
from monitoring import metrics

blp = resource_blueprint("auth", __name__, "Registration, sign-in sessions and the caller")


def _now() -> datetime:
    return datetime.now(UTC)


@blp.route("/auth/register", methods=["POST"])
@auth_rate_limit
@blp.arguments(RegisterSchema)
@blp.response(201, RegistrationSchema)
@error_responses(blp, 409, 429)
@blp.doc(security=PUBLIC)
def register(body: dict[str, Any]) -> dict[str, Any]:
    """Register a user

    Public. Creates the user and a new organization of their own, where they are
    `admin`, and signs them in: the answer carries the user, the organization
    and a token pair (as login does). 409 when the username or email is taken
    (case-insensitively); 422 for an invalid username (3-64 of `A-Za-z0-9_.-`),
    email, or password (8-256 characters, not the username).
    """
    with services().unit_of_work() as uow:
        registration = account.register_user(uow.session, body, _now())
        uow.commit()
    membership = registration.membership
    return {
        **vars(registration.tokens),
        "user": registration.user,
        "organization": {
            "id": membership.organization_id,
            "name": membership.organization.name,
            "slug": membership.organization.slug,
            "role": membership.role_name,
        },
    }


@blp.route("/auth/login", methods=["POST"])
@auth_rate_limit
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@error_responses(blp, 401, 429)
@blp.doc(security=PUBLIC)
def log_in(body: dict[str, Any]) -> sessions.TokenPair:
    """Sign in with a password

    Public. `username` is the username or the email. The session opens in the
    user's default organization (else their oldest membership). 401 with the same
    message for an unknown user and a wrong password. After 5 failures for one
    username in 15 minutes (configurable) sign-ins for it answer 429 with
    `Retry-After`, even with the right password, until the window has passed.
    """
    with services().unit_of_work() as uow:
        try:
            signed_in = login.sign_in(uow.session, body["username"], body["password"], _now())
        except login.LoginRefusedError as exc:
            uow.commit()  # the attempt and its audit entry are kept
            metrics.record_auth_request("password", "failure")
            if exc.status == 401:
                metrics.record_auth_failure("invalid_credentials")
            else:
                metrics.record_rate_limited("auth")
            _refuse(exc)
        uow.commit()
    metrics.record_auth_request("password", "success")
    return signed_in.tokens


@blp.route("/auth/refresh", methods=["POST"])
@auth_rate_limit
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
@error_responses(blp, 401, 429)
@blp.doc(security=PUBLIC)
def refresh(body: dict[str, Any]) -> sessions.TokenPair:
    """Exchange a refresh token for a new token pair

    Public. The presented token is rotated: it cannot be used again. Presenting a
    token that was already rotated or revoked revokes its whole session (every
    token of its family) and answers 401; so does an expired or unknown token.
    """
    with services().unit_of_work() as uow:
        try:
            tokens = sessions.rotate_refresh_token(uow.session, body["refresh_token"], _now())
        except sessions.RefreshTokenError as exc:
            uow.commit()  # a revoked family stays revoked
            metrics.record_auth_request("refresh", "failure")
            metrics.record_auth_failure(
                "expired_token" if exc.reason == "expired" else "invalid_token"
            )
            abort(401, str(exc))
        uow.commit()
    metrics.record_auth_request("refresh", "success")
    return tokens


@blp.route("/auth/logout", methods=["POST"])
@user_session
@blp.arguments(LogoutSchema, required=False)
@blp.response(204)
@error_responses(blp, *AUTHENTICATED_ERRORS)
def log_out(body: dict[str, Any]) -> None:
    """Sign out

    Any signed-in user (Bearer token; API keys get 403). With `refresh_token`,
    revokes that token's session; without, every session of the user. The access
    token used for the call stops working at once.
    """
    principal = current_principal()
    now = _now()
    with services().unit_of_work() as uow:
        sessions.end_sessions(uow.session, principal, (body or {}).get("refresh_token"), now)
        uow.after_commit(lambda: _revoke_current_access_token(now))
        uow.commit()


@blp.route("/auth/me", methods=["GET"])
@authenticated
@blp.response(200, MeSchema)
@error_responses(blp, 401, 429)
def me() -> dict[str, Any]:
    """The caller: user, current organization, role, approval groups, permissions

    Any authenticated caller. With an API key, `permissions` are the key's
    (its scopes within its creator's role) and `organizations` only its own.
    """
    with services().session_factory() as session:
        return account.describe_me(session, current_principal())


@blp.route("/auth/change-password", methods=["POST"])
@user_session
@blp.arguments(ChangePasswordSchema)
@blp.response(200, TokenPairSchema)
@error_responses(blp, *AUTHENTICATED_ERRORS)
def change_password(body: dict[str, Any]) -> sessions.TokenPair:
    """Change the password

    Any signed-in user (Bearer token). A wrong `current_password` answers 422
    with an error on that field (and counts as a failed sign-in for throttling:
    429 after too many). Every session of the user is revoked, and access tokens
    issued before the change stop working; the answer is a fresh token pair.
    """
    principal = current_principal()
    now = _now()
    with services().unit_of_work() as uow:
        try:
            tokens = login.change_password(
                uow.session, principal, body["current_password"], body["new_password"], now
            )
        except login.LoginRefusedError as exc:
            uow.commit()  # the failed attempt counts
            _refuse(exc)
        uow.after_commit(lambda: _revoke_current_access_token(now))
        uow.commit()
    return tokens


@blp.route("/auth/switch-organization", methods=["POST"])
@user_session
@blp.arguments(SwitchOrganizationSchema)
@blp.response(200, TokenPairSchema)
@error_responses(blp, *AUTHENTICATED_ERRORS, 404)
def switch_organization(body: dict[str, Any]) -> sessions.TokenPair:
    """Open a session in another organization the user belongs to

    Any signed-in user (Bearer token). 404 when the user is not a member of it.
    """
    with services().unit_of_work() as uow:
        tokens = account.switch_organization(
            uow.session, current_principal(), body["organization_id"], _now()
        )
        uow.commit()
    return tokens


def _refuse(exc: login.LoginRefusedError) -> NoReturn:
    if exc.retry_after is not None:
        # api.errors.abort() takes no headers; this is the same error shape with Retry-After.
        abort(exc.status, str(exc), headers={"Retry-After": str(exc.retry_after)})
    abort(exc.status, str(exc), exc.errors)


def _revoke_current_access_token(now: datetime) -> None:
    principal = current_principal()
    if principal.token_id and principal.token_expires_at:
        revoke_access_token(principal.token_id, principal.token_expires_at, now)
