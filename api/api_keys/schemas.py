"""Bodies of /auth/api-keys. The key itself appears once, in the creation answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from api.inputs import Timestamp
from models.permission import PERMISSIONS

MAX_LIFETIME_DAYS = 3650


class ApiKeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    scopes = fields.List(
        fields.String(),
        load_default=None,
        metadata={"description": "Permissions the key holds; default: all of the creator's"},
    )
    expires_in_days = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=MAX_LIFETIME_DAYS)
    )
    expires_at = Timestamp(load_default=None)

    @validates("scopes")
    def scopes_are_permissions(self, value: list[str] | None, **_: Any) -> None:
        unknown = sorted({scope for scope in value or [] if scope not in PERMISSIONS})
        if unknown:
            raise ValidationError(f"Unknown permissions: {', '.join(unknown)}")

    @validates_schema
    def one_expiry_in_the_future(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("expires_in_days") is not None and data.get("expires_at") is not None:
            raise ValidationError("Give expires_in_days or expires_at, not both.", "expires_at")
        expires_at = data.get("expires_at")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise ValidationError("Must be in the future.", "expires_at")


class ApiKeySchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    key_prefix = fields.String(
        required=True, metadata={"description": "The key's first characters, to recognise it"}
    )
    scopes = fields.List(fields.String(), required=True)
    user_id = fields.UUID(required=True, metadata={"description": "Who created it"})
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    api_key = fields.String(
        required=True, metadata={"description": "The key (`iwk_...`): shown only in this answer"}
    )
