"""Request and response shapes of the events endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.inputs import Timestamp
from api.pagination import PageQuerySchema, page_envelope_schema

MAX_TYPE_LENGTH = 200


class EventBodySchema(Schema):
    event_type = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_TYPE_LENGTH),
        metadata={"description": "The event type, e.g. `order.created`"},
    )
    source = fields.String(allow_none=True, validate=validate.Length(max=200))
    payload = fields.Dict(
        load_default=dict, metadata={"description": "The event's data (a JSON object)"}
    )
    idempotency_key = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "Or the `Idempotency-Key` header: a repeat returns the first answer"
        },
    )


class EventSchema(Schema):
    id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    source = fields.String(allow_none=True)
    payload = fields.Dict(required=True)
    idempotency_key = fields.String(allow_none=True)
    received_at = fields.DateTime(required=True)
    triggered_workflows = fields.List(fields.String(), required=True)
    execution_ids = fields.List(fields.String(), required=True)


class EventListQuerySchema(PageQuerySchema):
    event_type = fields.String()
    since = Timestamp()
    until = Timestamp()


EventPageSchema = page_envelope_schema("events", EventSchema)
