"""Reading the audit log of the caller's organization."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth.principal import Principal
from api.errors import abort
from api.pagination import paginate
from models.business import AuditLog

_EQUALITY_FILTERS = ("action", "resource_type", "resource_id", "actor_user_id")


def list_audit_logs(
    session: Session, principal: Principal, query: dict[str, Any]
) -> dict[str, Any]:
    """Newest first, filtered by exact fields and a [since, until) time range."""
    statement = select(AuditLog).where(AuditLog.organization_id == principal.organization_id)
    for name in _EQUALITY_FILTERS:
        if name in query:
            statement = statement.where(getattr(AuditLog, name) == query[name])
    if "since" in query:
        statement = statement.where(AuditLog.created_at >= query["since"])
    if "until" in query:
        statement = statement.where(AuditLog.created_at < query["until"])
    statement = statement.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    return paginate(session, statement, query["page"], query["page_size"], "audit_logs")


def get_audit_log(session: Session, principal: Principal, entry_id: uuid.UUID) -> AuditLog:
    entry = session.scalars(
        select(AuditLog).where(
            AuditLog.id == entry_id, AuditLog.organization_id == principal.organization_id
        )
    ).first()
    if entry is None:
        abort(404, "Audit log entry not found")
    return entry
