"""Request and response shapes of the executions endpoints (field names of the original)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.inputs import Timestamp
from api.pagination import PageQuerySchema, page_envelope_schema
from engine.state import ExecutionStatus


class ExecutionSchema(Schema):
    id = fields.UUID(required=True)
    workflow_id = fields.String(required=True, metadata={"description": "The workflow's slug"})
    workflow_row_id = fields.UUID(
        required=True,
        allow_none=True,
        metadata={"description": "The version's row id; null once that version is deleted"},
    )
    workflow_version = fields.String(required=True)
    status = fields.String(required=True)
    result = fields.String(allow_none=True)
    error_type = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    trigger_type = fields.String(required=True)
    trigger_event = fields.String(allow_none=True)
    trigger_payload = fields.Dict(required=True)
    context = fields.Dict(required=True)
    current_step_id = fields.String(allow_none=True)
    attempt_group = fields.Integer(required=True)
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class StepRunSchema(Schema):
    id = fields.UUID(required=True)
    step_id = fields.String(required=True)
    step_type = fields.String(required=True)
    branch_key = fields.String(required=True)
    status = fields.String(required=True)
    attempt = fields.Integer(required=True)
    attempt_group = fields.Integer(required=True)
    input = fields.Raw(allow_none=True)
    output = fields.Raw(allow_none=True)
    error_message = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)


class TraceSchema(Schema):
    execution = fields.Nested(ExecutionSchema, required=True)
    steps = fields.List(fields.Nested(StepRunSchema), required=True)


class ExecutionListQuerySchema(PageQuerySchema):
    workflow_id = fields.String(metadata={"description": "The workflow's slug"})
    status = fields.String(validate=validate.OneOf([s.value for s in ExecutionStatus]))
    since = Timestamp()
    until = Timestamp()


class ExecuteBodySchema(Schema):
    payload = fields.Dict(load_default=dict, metadata={"description": "The initial context"})


class DryRunSchema(Schema):
    path = fields.List(
        fields.String(), required=True, metadata={"description": "Step ids, in order"}
    )
    decisions = fields.List(fields.Dict(), required=True)
    result = fields.String(allow_none=True)
    status = fields.String(required=True)
    error_type = fields.String(allow_none=True)
    message = fields.String(allow_none=True)
    effects = fields.List(
        fields.Dict(), required=True, metadata={"description": "What would be done"}
    )
    steps = fields.List(fields.Dict(), required=True)
    waiting = fields.Dict(allow_none=True)
    context = fields.Dict(required=True)


class CancelBodySchema(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


ExecutionPageSchema = page_envelope_schema("executions", ExecutionSchema)
