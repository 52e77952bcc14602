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
