"""API keys of the caller's organization: issue (hashed), list, revoke."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.auth.tokens import hash_token, new_api_key
from api.errors import abort
from api.pagination import paginate
from models.identity import ApiKey

PREFIX_LENGTH = 12  # "iwk_" and 8 random characters: enough to tell keys apart


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    raw_key: str


def create_api_key(
    session: Session, principal: Principal, data: dict[str, Any], now: datetime
) -> IssuedKey:
    """A key scoped to the caller's organization and to permissions the caller holds."""
    requested = data["scopes"]
    scopes = sorted(principal.permissions if requested is None else set(requested))
    beyond = sorted(set(scopes) - principal.permissions)
    if beyond:
        abort(
            422,
            "An API key cannot hold permissions its creator does not have",
            {"scopes": [f"Not held by you: {', '.join(beyond)}"]},
        )
    expires_at = data["expires_at"]
    if data["expires_in_days"] is not None:
        expires_at = now + timedelta(days=data["expires_in_days"])
    raw_key = new_api_key()
    key = ApiKey(
        organization_id=principal.organization_id,
        user_id=principal.user_id,
        name=data["name"],
        key_prefix=raw_key[:PREFIX_LENGTH],
        key_hash=hash_token(raw_key),
        expires_at=expires_at,
    )
    key.scopes = scopes
    session.add(key)
    session.flush()
    session.refresh(key)
    record_audit(
        session,
        "api_key_created",
        "api_key",
        key.id,
        {
            "name": key.name,
            "key_prefix": key.key_prefix,
            "scopes": scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return IssuedKey(key=key, raw_key=raw_key)


def list_api_keys(
    session: Session, principal: Principal, page: int, page_size: int
) -> dict[str, Any]:
    statement = (
        select(ApiKey)
        .where(ApiKey.organization_id == principal.organization_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
    )
    return paginate(session, statement, page, page_size, "api_keys")


def revoke_api_key(
    session: Session, principal: Principal, key_id: uuid.UUID, now: datetime
) -> None:
    """Revoke a key of the caller's organization; revoking twice changes nothing."""
    key = session.scalars(
        select(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.organization_id == principal.organization_id)
        .with_for_update()
    ).first()
    if key is None:
        abort(404, "API key not found")
    if key.revoked_at is not None:
        return
    key.revoked_at = now
    record_audit(
        session, "api_key_revoked", "api_key", key.id, {"name": key.name, "prefix": key.key_prefix}
    )
