"""Response and query shapes of the record store endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.pagination import PageQuerySchema, page_envelope_schema


class RecordSchema(Schema):
    id = fields.UUID(required=True)
    entity = fields.String(required=True)
    entity_id = fields.String(required=True)
    data = fields.Dict(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


RecordPageSchema = page_envelope_schema("records", RecordSchema)


class RecordListQuerySchema(PageQuerySchema):
    entity = fields.String(
        validate=validate.Length(max=100), metadata={"description": "Exact entity type"}
    )
    entity_id = fields.String(
        validate=validate.Length(max=200), metadata={"description": "Exact entity id"}
    )
