"""HTTP endpoints of /audit-logs."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.audit_logs import query as audit_query
from api.audit_logs.schemas import AuditLogQuerySchema, AuditLogSchema
from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.pagination import page_envelope_schema
from api.services import services
from models.business import AuditLog

blp = resource_blueprint("audit_logs", __name__, "The organization's audit log")

AuditLogPageSchema = page_envelope_schema("audit_logs", AuditLogSchema)


@blp.route("/audit-logs")
class AuditLogs(MethodView):
    @requires("audit:read")
    @blp.arguments(AuditLogQuerySchema, location="query")
    @blp.response(200, AuditLogPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List audit entries of the organization, newest first

        Requires `audit:read`. Filters: `action`, `resource_type`, `resource_id`,
        `actor_user_id` (exact), `since` (inclusive) and `until` (exclusive), ISO
        8601 datetimes (UTC when no offset is given).
        """
        with services().session_factory() as session:
            return audit_query.list_audit_logs(session, current_principal(), query)


@blp.route("/audit-logs/<uuid:entry_id>")
class AuditLogById(MethodView):
    @requires("audit:read")
    @blp.response(200, AuditLogSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, entry_id: uuid.UUID) -> AuditLog:
        """Read one audit entry

        Requires `audit:read`. 404 for an entry of another organization.
        """
        with services().session_factory() as session:
            return audit_query.get_audit_log(session, current_principal(), entry_id)
