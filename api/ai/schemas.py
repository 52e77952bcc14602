"""Request and response shapes of the AI endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.ai.providers.chat import ROLES

MODEL_NAME = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,99}$", error="must be a model name (letters, digits, ._:/@-)"
)
MAX_TOKENS = 8192
MAX_MESSAGES = 100
MAX_CONTENT_CHARS = 100_000


class MessageSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    content = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CONTENT_CHARS))


class ModelOptionsSchema(Schema):
    model = fields.String(
        load_default=None, validate=MODEL_NAME, metadata={"description": "Default: AI_MODEL"}
    )
    temperature = fields.Float(load_default=None, validate=validate.Range(min=0, max=2))


class ChatBodySchema(ModelOptionsSchema):
    messages = fields.List(
        fields.Nested(MessageSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_MESSAGES),
    )
    max_tokens = fields.Integer(load_default=1024, validate=validate.Range(min=1, max=MAX_TOKENS))
    stream = fields.Boolean(
        load_default=False,
        metadata={
            "description": 'Answer `text/event-stream`: `data: {"delta": ...}` frames, '
            "then `event: done` with the model and usage (or `event: error`)"
        },
    )


class UsageSchema(Schema):
    input_tokens = fields.Integer(required=True)
    output_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)


class ChatResponseSchema(Schema):
    message = fields.Nested(MessageSchema, required=True)
    model = fields.String(required=True)
    usage = fields.Nested(UsageSchema, required=True)
    finish_reason = fields.String(allow_none=True)


class InterpretBodySchema(ModelOptionsSchema):
    description = fields.String(
        required=True,
        validate=validate.Length(min=10, max=10_000),
        metadata={"description": "The process to automate, in plain language"},
    )
    workflow_id = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"),
        metadata={"description": "Use this workflow_id in the answer"},
    )
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    max_tokens = fields.Integer(load_default=4096, validate=validate.Range(min=1, max=MAX_TOKENS))


class InterpretResponseSchema(Schema):
    definition = fields.Dict(
        required=True,
        metadata={"description": "Normalised when valid, else the model's last answer"},
    )
    valid = fields.Boolean(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "Remaining problems by JSON path (empty when valid)"},
    )
    attempts = fields.Integer(required=True, metadata={"description": "1, or 2 after a repair"})
    model = fields.String(required=True)
    usage = fields.Nested(UsageSchema, required=True)


class CapabilitiesSchema(Schema):
    enabled = fields.Boolean(required=True)
    provider = fields.String(allow_none=True)
    model = fields.String(allow_none=True)
    features = fields.List(fields.String(), required=True)
    message = fields.String(allow_none=True)
