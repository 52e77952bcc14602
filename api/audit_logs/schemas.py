"""Bodies of /audit-logs."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.inputs import Timestamp
from api.pagination import PageQuerySchema


class AuditLogQuerySchema(PageQuerySchema):
    action = fields.String(validate=validate.Length(min=1, max=100))
    resource_type = fields.String(validate=validate.Length(min=1, max=50))
    resource_id = fields.String(validate=validate.Length(min=1, max=200))
    actor_user_id = fields.UUID()
    since = Timestamp(metadata={"description": "ISO 8601; entries at or after it"})
    until = Timestamp(metadata={"description": "ISO 8601; entries before it"})

    @validates_schema
    def since_before_until(self, data: dict[str, Any], **_: Any) -> None:
        if "since" in data and "until" in data and data["since"] >= data["until"]:
            raise ValidationError("Must be after `since`.", "until")


class AuditLogSchema(Schema):
    id = fields.UUID(required=True)
    organization_id = fields.UUID(allow_none=True)
    actor_user_id = fields.UUID(allow_none=True)
    actor_api_key_id = fields.UUID(allow_none=True)
    action = fields.String(required=True)
    resource_type = fields.String(required=True)
    resource_id = fields.String(allow_none=True)
    changes = fields.Dict(required=True)
    ip_address = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    chain_position = fields.Integer(required=True)
    prev_hash = fields.String(required=True)
    entry_hash = fields.String(required=True)


class AuditVerifyQuerySchema(Schema):
    anchor_position = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "position of a head recorded earlier (with anchor_hash)"},
    )
    anchor_hash = fields.String(
        validate=validate.Regexp(r"^[0-9a-f]{64}$", error="Must be 64 lowercase hex digits."),
        metadata={"description": "the hash recorded for anchor_position"},
    )

    @validates_schema
    def both_or_neither(self, data: dict[str, Any], **_: Any) -> None:
        if ("anchor_position" in data) != ("anchor_hash" in data):
            raise ValidationError("anchor_position and anchor_hash go together.", "anchor_hash")


class ChainHeadSchema(Schema):
    position = fields.Integer(required=True)
    hash = fields.String(required=True)
    entry_id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)


class ChainBreakSchema(Schema):
    position = fields.Integer(required=True)
    entry_id = fields.UUID(allow_none=True)
    reason = fields.String(
        required=True,
        metadata={
            "description": "content_mismatch | link_mismatch | missing_entry | anchor_mismatch"
        },
    )
    detail = fields.String(required=True)


class SignedHeadPayloadSchema(Schema):
    organization_id = fields.String(required=True)
    position = fields.Integer(required=True)
    hash = fields.String(required=True)
    valid = fields.Boolean(required=True)
    verified_at = fields.String(required=True)


class SignedHeadSchema(Schema):
    payload = fields.Nested(SignedHeadPayloadSchema, required=True)
    algorithm = fields.String(allow_none=True, metadata={"description": "HMAC-SHA256"})
    key_id = fields.String(allow_none=True)
    signature = fields.String(
        allow_none=True,
        metadata={"description": "hex HMAC over the payload's canonical JSON; null unsigned"},
    )
    unsigned_reason = fields.String(allow_none=True)


class AuditVerifySchema(Schema):
    valid = fields.Boolean(required=True)
    entries_checked = fields.Integer(required=True)
    first_invalid = fields.Nested(ChainBreakSchema, allow_none=True)
    head = fields.Nested(ChainHeadSchema, allow_none=True)
    signed_head = fields.Nested(SignedHeadSchema, required=True)
