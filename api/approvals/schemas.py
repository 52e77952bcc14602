"""Request and response shapes of the approvals endpoints (field names of the original)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.pagination import PageQuerySchema, page_envelope_schema

APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")


class ApprovalSchema(Schema):
    id = fields.UUID(required=True)
    execution_id = fields.UUID(required=True)
    workflow_id = fields.String(required=True, metadata={"description": "The workflow's slug"})
    step_id = fields.String(required=True)
    entity_type = fields.String(allow_none=True)
    entity_id = fields.String(allow_none=True)
    approver_role = fields.String(required=True, metadata={"description": "The approval group"})
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    data = fields.Dict(required=True)
    decided_by = fields.UUID(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    requested_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)


class ApprovalListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(APPROVAL_STATUSES))
    role = fields.String(metadata={"description": "The approval group (`approver_role`)"})
    mine = fields.Boolean(
        load_default=False,
        metadata={"description": "Only approvals of the caller's approval groups (admins: all)"},
    )
    execution_id = fields.UUID()


class DecisionBodySchema(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


ApprovalPageSchema = page_envelope_schema("approvals", ApprovalSchema)
