"""Bodies of /organizations and their members."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from models.permission import ROLES

_org_name = validate.Length(min=1, max=200)
_description = validate.Length(max=2000)
_role = validate.OneOf(sorted(ROLES), error="Unknown role; one of: {choices}.")
_approver_roles = fields.List(
    fields.String(validate=validate.Length(min=1, max=100)),
    validate=validate.Length(max=50),
    metadata={"description": "Approval groups (free-form names) the member decides for"},
)


class OrganizationCreateSchema(Schema):
    name = fields.String(required=True, validate=_org_name)
    description = fields.String(load_default=None, allow_none=True, validate=_description)


class OrganizationUpdateSchema(Schema):
    name = fields.String(validate=_org_name)
    description = fields.String(allow_none=True, validate=_description)

    @validates_schema
    def something_changes(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Give name and/or description.", "_schema")


class OrganizationSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    slug = fields.String(required=True)
    description = fields.String(allow_none=True)
    role = fields.String(required=True, metadata={"description": "The caller's role in it"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(name.strip() for name in names if name.strip()))


class MemberAddSchema(Schema):
    username = fields.String(validate=validate.Length(min=1, max=254))
    email = fields.String(validate=validate.Length(min=1, max=254))
    role = fields.String(required=True, validate=_role)
    approver_roles = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "Approval groups (free-form names) the member decides for"},
    )

    @validates_schema
    def names_a_user(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("username")) == bool(data.get("email")):
            raise ValidationError("Give the user's username or email (one of them).", "username")

    @post_load
    def dedupe_groups(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["approver_roles"] = _unique(data["approver_roles"])
        return data


class MemberUpdateSchema(Schema):
    role = fields.String(validate=_role)
    approver_roles = _approver_roles

    @validates_schema
    def something_changes(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Give role and/or approver_roles.", "_schema")

    @post_load
    def dedupe_groups(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "approver_roles" in data:
            data["approver_roles"] = _unique(data["approver_roles"])
        return data


class MemberSchema(Schema):
    user_id = fields.UUID(required=True)
    username = fields.String(required=True, attribute="user.username")
    email = fields.String(required=True, attribute="user.email")
    first_name = fields.String(allow_none=True, attribute="user.first_name")
    last_name = fields.String(allow_none=True, attribute="user.last_name")
    role = fields.String(required=True, attribute="role_name")
    approver_roles = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True, metadata={"description": "When they joined"})
    updated_at = fields.DateTime(required=True)
