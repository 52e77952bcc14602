"""Request and response bodies of /auth (field names kept from the original service)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
PASSWORD_MIN_LENGTH = 8
# argon2 hashes any length, but a megabyte password is a denial of service.
PASSWORD_MAX_LENGTH = 256

_username = validate.Regexp(
    USERNAME_PATTERN, error="Use 3 to 64 characters: letters, digits, '_', '.' or '-'."
)
_password = validate.Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH)
_name = validate.Length(max=100)


class RegisterSchema(Schema):
    username = fields.String(required=True, validate=_username)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=_password)
    first_name = fields.String(load_default=None, allow_none=True, validate=_name)
    last_name = fields.String(load_default=None, allow_none=True, validate=_name)

    @validates_schema
    def password_is_not_the_username(self, data: dict[str, Any], **_: Any) -> None:
        if data["password"].lower() == data["username"].lower():
            raise ValidationError("The password must not be the username.", "password")


class LoginSchema(Schema):
    username = fields.String(
        required=True,
        validate=validate.Length(min=1, max=254),
        metadata={"description": "The username or the email address"},
    )
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class LogoutSchema(Schema):
    refresh_token = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=512),
        metadata={"description": "Revoke this token's session; without it, every session"},
    )


class ChangePasswordSchema(Schema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )
    new_password = fields.String(required=True, load_only=True, validate=_password)


class SwitchOrganizationSchema(Schema):
    organization_id = fields.UUID(required=True)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    expires_in = fields.Integer(
        required=True, metadata={"description": "Seconds until the access token expires"}
    )
    token_type = fields.String(required=True, metadata={"example": "Bearer"})


class AccountUserSchema(Schema):
    id = fields.UUID(required=True)
    username = fields.String(required=True)
    email = fields.String(required=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class AccountOrganizationSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    slug = fields.String()
    role = fields.String(required=True)


class RegistrationSchema(TokenPairSchema):
    user = fields.Nested(AccountUserSchema, required=True)
    organization = fields.Nested(AccountOrganizationSchema, required=True)


class MeSchema(Schema):
    user_id = fields.UUID(required=True)
    username = fields.String(required=True)
    email = fields.String(required=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    organization_id = fields.UUID(required=True)
    role = fields.String(required=True)
    approver_roles = fields.List(fields.String(), required=True)
    permissions = fields.List(fields.String(), required=True)
    organizations = fields.List(fields.Nested(AccountOrganizationSchema), required=True)
    api_key_id = fields.UUID(
        allow_none=True, metadata={"description": "Set when the caller used an API key"}
    )
