"""Request and response shapes of the events endpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from api.errors import ErrorSchema
from api.events.batch import Invalid
from api.inputs import Timestamp, json_problem
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


class _EventInBatch(fields.Nested):
    """An event of a batch, documented as EventBody; one that does not validate is
    kept as its errors (rejected alone) instead of failing the whole batch."""

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | Sequence[str] | AbstractSet[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        # What api.inputs.guard_request refuses in other bodies, refused in this event only.
        found = json_problem(value)
        if found:
            where, problem = found
            return Invalid({where or "_schema": [problem]})
        try:
            return super()._deserialize(value, attr, data, partial, **kwargs)
        except ValidationError as error:
            messages = error.normalized_messages()
            return Invalid(messages if isinstance(messages, dict) else {"_schema": messages})


class EventBatchSchema(Schema):
    events = fields.List(
        _EventInBatch(EventBodySchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": "The events, answered one by one in this order (at most"
            " EVENT_BATCH_MAX, 500 by default: more is a 413)"
        },
    )


class AcceptedEventSchema(EventSchema):
    """An accepted event of a batch: the event without its source and payload."""

    class Meta:
        exclude = ("source", "payload")


class EventAnswerSchema(Schema):
    index = fields.Integer(
        required=True, metadata={"description": "The event's position in the request"}
    )
    status = fields.Integer(
        required=True, metadata={"description": "202 accepted, or the 4xx it was rejected with"}
    )
    repeated = fields.Boolean(
        metadata={
            "description": "Accepted: the answer is the first one of its idempotency key"
            " (from an earlier request or an earlier event of this batch); nothing started"
        }
    )
    event = fields.Nested(AcceptedEventSchema, metadata={"description": "When accepted"})
    error = fields.Nested(ErrorSchema, metadata={"description": "When rejected"})


class EventBatchAnswerSchema(Schema):
    accepted = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    retry_after = fields.Integer(
        allow_none=True,
        metadata={"description": "Some events were rate limited: seconds before a retry"},
    )
    results = fields.List(fields.Nested(EventAnswerSchema), required=True)
