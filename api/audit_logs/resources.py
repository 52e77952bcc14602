"""HTTP endpoints of /audit-logs."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.audit_logs import query as audit_query
from api.audit_logs import verify as audit_verify
from api.audit_logs.schemas import (
    AuditLogQuerySchema,
    AuditLogSchema,
    AuditVerifyQuerySchema,
    AuditVerifySchema,
)
from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.pagination import page_envelope_schema
from api.services import services, settings
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


@blp.route("/audit-logs/verify")
class AuditLogVerify(MethodView):
    @requires("audit:read")
    @blp.arguments(AuditVerifyQuerySchema, location="query")
    @blp.response(200, AuditVerifySchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Verify the organization's audit hash chain

        Requires `audit:read`. Walks the chain in order, recomputing each entry's
        SHA-256 and its link to the entry before; `first_invalid` names the first
        entry that does not match (edited, deleted before it, or forged). `head` is
        the chain's last entry; `signed_head` exports it, signed with HMAC-SHA256
        when the server has an `AUDIT_SIGNING_KEY` (unsigned, with the reason,
        otherwise). Pass a head recorded earlier as `anchor_position` and
        `anchor_hash` to also detect a rewrite of the whole chain or its tail.
        """
        anchor = None
        if "anchor_position" in query:
            anchor = (query["anchor_position"], query["anchor_hash"])
        principal = current_principal()
        with services().session_factory() as session:
            return audit_verify.verify_chain(
                session, principal.organization_id, anchor, settings().audit_signing_key
            )


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
