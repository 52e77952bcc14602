"""Request and response shapes of the workflow endpoints."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from api.inputs import Timestamp
from api.pagination import PageQuerySchema, page_envelope_schema

TRIGGER_TYPES = ("event", "schedule", "manual")


def _passthrough(openapi: dict[str, object], description: str) -> fields.Raw:
    """A documented field that loads its value untouched: the engine validates it."""
    return fields.Raw(allow_none=True, metadata={**openapi, "description": description})


class WorkflowBodySchema(Schema):
    """A workflow in the wrapped layout (`definition: {...}`) or the flat one.

    Loaded as-is (unknown keys included, nothing coerced) and handed to the
    engine's validator, which reports every problem at its JSON path.
    """

    class Meta:
        unknown = INCLUDE

    workflow_id = _passthrough({"type": "string"}, "Slug shared by every version")
    version = _passthrough({"type": "string"}, "Version label, unique per workflow_id")
    name = _passthrough({"type": "string"}, "Display name")
    description = _passthrough({"type": "string"}, "Optional description")
    tags = _passthrough({"type": "array", "items": {"type": "string"}}, "Optional tags")
    enabled = _passthrough(
        {"type": "boolean"}, "Create enabled (default false); ignored by PUT, see /enable"
    )
    definition = _passthrough(
        {"type": "object"}, "Wrapped layout: `{trigger, context?, steps, timeout?}`"
    )
    trigger = _passthrough({"type": "object"}, "Flat layout: the trigger")
    context = _passthrough({"type": "object"}, "Flat layout: the context block")
    steps = _passthrough({"type": "array", "items": {"type": "object"}}, "Flat layout: the steps")
    timeout = _passthrough({"type": "string"}, "Flat layout: the workflow timeout")


class WorkflowSchema(Schema):
    id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    workflow_id = fields.String(required=True)
    version = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    definition = fields.Dict(required=True, metadata={"description": "Normalised definition"})
    enabled = fields.Boolean(required=True)
    tags = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    created_by = fields.UUID(allow_none=True)


WorkflowPageSchema = page_envelope_schema("workflows", WorkflowSchema)
WorkflowVersionPageSchema = Schema.from_dict(
    {
        "versions": fields.List(fields.Nested(WorkflowSchema), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "page_size": fields.Integer(required=True),
    },
    name="WorkflowVersionPage",
)


class WorkflowListQuerySchema(PageQuerySchema):
    search = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Case-insensitive substring of the name or workflow_id"},
    )
    tag = fields.List(
        fields.String(validate=validate.Length(max=100)),
        metadata={"description": "Repeatable or comma-separated; every tag must be present"},
    )
    enabled = fields.Boolean()
    workflow_id = fields.String(validate=validate.Length(max=100))
    trigger_type = fields.String(validate=validate.OneOf(TRIGGER_TYPES))
    latest = fields.Boolean(
        load_default=False,
        metadata={"description": "Only the newest matching version of each workflow_id"},
    )


class DeleteQuerySchema(Schema):
    force = fields.Boolean(
        load_default=False,
        metadata={"description": "Cancel this version's active executions instead of refusing"},
    )


class ValidationResultSchema(Schema):
    valid = fields.Boolean(required=True)
    definition = fields.Dict(
        required=True, metadata={"description": "The normalised workflow, as it would be stored"}
    )


MAX_SHADOW_EVENT_IDS = 1000
MAX_SHADOW_LIMIT = 1_000_000


class ShadowBodySchema(Schema):
    """Which recorded events to replay through `candidate`: a window (`since`,
    optional `until`), a list of `event_ids`, or the newest `limit` events (these
    combine; at least one is required)."""

    candidate = fields.Raw(
        required=True,
        metadata={
            "type": "object",
            "description": "The candidate version: a workflow document, as POST /workflows takes",
        },
    )
    since = Timestamp()
    until = Timestamp()
    event_ids = fields.List(
        fields.UUID(), validate=validate.Length(min=1, max=MAX_SHADOW_EVENT_IDS)
    )
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_SHADOW_LIMIT))
    background = fields.Boolean(
        load_default=False,
        metadata={"description": "Run by a worker (202) even when short enough to answer at once"},
    )

    @validates_schema
    def _bounded(self, data: dict[str, Any], **_: Any) -> None:
        if not any(data.get(key) for key in ("since", "event_ids", "limit")):
            raise ValidationError("Give `since`, `event_ids` or `limit`.", "_schema")
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and until <= since:
            raise ValidationError("must be after `since`", "until")


class ShadowReportSchema(Schema):
    id = fields.UUID(required=True)
    workflow_id = fields.String(required=True)
    workflow_row_id = fields.UUID(allow_none=True)
    status = fields.String(
        required=True, metadata={"description": "pending, running, completed or failed"}
    )
    selection = fields.Dict(required=True)
    summary = fields.Dict(
        allow_none=True,
        metadata={
            "description": "events_replayed, same_result, different_result, differences, "
            "unresolved, by_change, steps_newly_reached, steps_no_longer_reached"
        },
    )
    error_message = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    differences = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "This page of the events whose run differs, in replay order"},
    )
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
