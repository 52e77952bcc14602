"""Request and response shapes of the rule endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.pagination import PageQuerySchema, page_envelope_schema

RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

_CONDITIONS_DOC = {
    "description": "Conditions that must all hold: `{field, operator, value}` leaves, "
    "`{and: [...]}`, `{or: [...]}`, `{not: {...}}` or `{rule_id: ...}`",
}


def _conditions(*, required: bool) -> fields.List[object]:
    # Items are loaded untouched and checked by the engine's condition validator,
    # which reports problems at JSON paths such as `conditions[0].and[1].operator`.
    return fields.List(
        fields.Raw(metadata={"type": "object"}),
        required=required,
        validate=validate.Length(min=1),
        metadata=_CONDITIONS_DOC,
    )


class RuleCreateSchema(Schema):
    rule_id = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=100),
            validate.Regexp(RULE_ID_PATTERN, error="must be a slug: letters, digits, _ . -"),
        ],
        metadata={"description": "Slug, unique in the organization; referenced as `rule_id`"},
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, load_default=None)
    conditions = _conditions(required=True)
    enabled = fields.Boolean(load_default=True)


class RuleUpdateSchema(Schema):
    rule_id = fields.String(
        metadata={"description": "Immutable: omit it or repeat the current one"},
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, load_default=None)
    conditions = _conditions(required=True)
    enabled = fields.Boolean(metadata={"description": "Unchanged when omitted"})


class RuleSchema(Schema):
    id = fields.UUID(required=True)
    rule_id = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    conditions = fields.List(fields.Dict(), required=True)
    enabled = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


RulePageSchema = page_envelope_schema("rules", RuleSchema)


class RuleListQuerySchema(PageQuerySchema):
    search = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Case-insensitive substring of the name or rule_id"},
    )
    enabled = fields.Boolean()


class RuleTestSchema(Schema):
    payload = fields.Dict(
        required=True, metadata={"description": "The context the conditions are evaluated in"}
    )


class LeafDecisionSchema(Schema):
    field = fields.String(required=True)
    operator = fields.String(required=True)
    expected = fields.Raw(allow_none=True)
    actual = fields.Raw(allow_none=True)
    found = fields.Boolean(required=True)
    result = fields.Boolean(required=True)


class ConditionResultSchema(Schema):
    index = fields.Integer(required=True)
    condition = fields.Dict(required=True)
    matched = fields.Boolean(required=True)
    decisions = fields.List(
        fields.Nested(LeafDecisionSchema),
        required=True,
        metadata={"description": "How each leaf was decided, in evaluation order"},
    )
    error = fields.String(
        allow_none=True,
        metadata={"description": "Why the condition could not be evaluated (then unmatched)"},
    )


class RuleTestResultSchema(Schema):
    matched = fields.Boolean(required=True, metadata={"description": "Every condition holds"})
    results = fields.List(fields.Nested(ConditionResultSchema), required=True)
