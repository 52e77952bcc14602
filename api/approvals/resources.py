"""HTTP endpoints of approvals: list, read, approve, reject."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.approvals import service
from api.approvals.schemas import (
    ApprovalListQuerySchema,
    ApprovalPageSchema,
    ApprovalSchema,
    DecisionBodySchema,
)
from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from engine.state import ApprovalStatus
from models.execution import Approval

blp = resource_blueprint("approvals", __name__, "Approvals: list, read, approve, reject")


@blp.route("/approvals")
class Approvals(MethodView):
    @requires("approval:read")
    @blp.arguments(ApprovalListQuerySchema, location="query")
    @blp.response(200, ApprovalPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 422)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List approvals, newest first.

        Requires `approval:read`. Filters: `status`, `role` (approval group),
        `mine=true` (approvals of the caller's approval groups; admins see all),
        `execution_id`.
        """
        return service.list_approvals(current_principal(), query)


@blp.route("/approvals/<uuid:approval_id>")
class ApprovalById(MethodView):
    @requires("approval:read")
    @blp.response(200, ApprovalSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, approval_id: uuid.UUID) -> Approval:
        """Read one approval. Requires `approval:read`."""
        return service.get_approval(current_principal().organization_id, approval_id)


@blp.route("/approvals/<uuid:approval_id>/approve")
class ApproveApproval(MethodView):
    @requires("approval:approve")
    @blp.arguments(DecisionBodySchema, required=False)
    @blp.response(200, ApprovalSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, body: dict[str, Any], approval_id: uuid.UUID) -> Approval:
        """Approve a pending approval; the execution continues (`on_approve`, else `next`).

        Requires `approval:approve` and membership of the approval's group (or
        being an organization admin). Idempotent; 409 when the approval was
        rejected, expired or cancelled. The approval group and the member who
        started the execution are emailed the decision after it is committed.
        """
        reason = (body or {}).get("reason")
        return service.decide(current_principal(), approval_id, ApprovalStatus.APPROVED, reason)


@blp.route("/approvals/<uuid:approval_id>/reject")
class RejectApproval(MethodView):
    @requires("approval:reject")
    @blp.arguments(DecisionBodySchema, required=False)
    @blp.response(200, ApprovalSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, body: dict[str, Any], approval_id: uuid.UUID) -> Approval:
        """Reject a pending approval; the execution goes to `on_reject`, else completes `blocked`.

        Requires `approval:reject` and membership of the approval's group (or
        being an organization admin). Idempotent; 409 when the approval was
        approved, expired or cancelled. The approval group and the member who
        started the execution are emailed the decision after it is committed.
        """
        reason = (body or {}).get("reason")
        return service.decide(current_principal(), approval_id, ApprovalStatus.REJECTED, reason)
