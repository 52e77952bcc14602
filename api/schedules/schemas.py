"""Request and response shapes of the schedule endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.pagination import PageQuerySchema, page_envelope_schema

MAX_NEXT_RUNS = 100

_CRON_DOC = {
    "description": "5 fields (`0 9 * * 1-5`), 6 fields with seconds first (`*/30 * * * * *`)"
    " or a descriptor (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`)",
    "example": "0 9 * * *",
}
_TIMEZONE_DOC = {
    "description": "IANA timezone the cron is read in (DST included)",
    "example": "Europe/Berlin",
}


class ScheduleCreateSchema(Schema):
    cron = fields.String(required=True, validate=validate.Length(max=100), metadata=_CRON_DOC)
    timezone = fields.String(
        load_default="UTC", validate=validate.Length(max=64), metadata=_TIMEZONE_DOC
    )
    payload = fields.Dict(
        load_default=dict, metadata={"description": "The trigger payload of every run"}
    )
    enabled = fields.Boolean(load_default=True)


class ScheduleUpdateSchema(Schema):
    """Every field optional: the ones given replace the stored ones."""

    cron = fields.String(validate=validate.Length(max=100), metadata=_CRON_DOC)
    timezone = fields.String(validate=validate.Length(max=64), metadata=_TIMEZONE_DOC)
    payload = fields.Dict(metadata={"description": "The trigger payload of every run"})
    enabled = fields.Boolean()


class ScheduleSchema(Schema):
    id = fields.UUID(required=True)
    workflow_id = fields.String(required=True, metadata={"description": "The workflow's slug"})
    workflow_row_id = fields.UUID(
        required=True, metadata={"description": "The workflow version's row id"}
    )
    cron = fields.String(required=True)
    timezone = fields.String(required=True)
    payload = fields.Dict(required=True)
    enabled = fields.Boolean(required=True)
    from_trigger = fields.Boolean(
        required=True,
        metadata={"description": "Derived from the workflow's `trigger.schedule`"},
    )
    next_run_at = fields.DateTime(
        allow_none=True, metadata={"description": "Next due time (UTC); null while disabled"}
    )
    last_run_at = fields.DateTime(
        allow_none=True, metadata={"description": "The due time of the last run fired"}
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


SchedulePageSchema = page_envelope_schema("schedules", ScheduleSchema)


class ScheduleListQuerySchema(PageQuerySchema):
    workflow_id = fields.String(
        validate=validate.Length(max=100), metadata={"description": "The workflow's slug"}
    )
    enabled = fields.Boolean()


class NextRunsQuerySchema(Schema):
    count = fields.Integer(load_default=5, validate=validate.Range(min=1, max=MAX_NEXT_RUNS))


class NextRunsSchema(Schema):
    schedule_id = fields.UUID(required=True)
    cron = fields.String(required=True)
    timezone = fields.String(required=True)
    next_runs = fields.List(
        fields.DateTime(),
        required=True,
        metadata={"description": "The next due times after now, in UTC, ascending"},
    )
