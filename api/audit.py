"""Audit entries, written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid
from typing import Any

from flask import g, request
from sqlalchemy.orm import Session

from api.auth.principal import Principal
from models.business import AuditLog


def record_audit(
    session: Session,
    action: str,
    resource_type: str,
    resource_id: Any = None,
    changes: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    organization_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> AuditLog:
    principal = principal or g.get("principal")
    entry = AuditLog(
        organization_id=organization_id or (principal.organization_id if principal else None),
        actor_user_id=user_id or (principal.user_id if principal else None),
        actor_api_key_id=principal.api_key_id if principal else None,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        changes=changes or {},
        ip_address=request.remote_addr if request else None,
        request_id=g.get("request_id"),
    )
    session.add(entry)
    return entry
