"""Query parameters and response shapes of the analytics endpoints.

`time_range` and `interval` are closed vocabularies: anything else is a 422
before a query is built (the original service formatted `interval` into SQL).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from api.analytics.window import DEFAULT_INTERVAL, INTERVALS_FOR, TIME_RANGES, UNITS
from api.pagination import PageQuerySchema

_RATE = {"description": "completed / (completed + failed), 0..1; null when neither occurred"}
_MS = {"description": "Milliseconds over executions that recorded a duration; null when none"}


class AnalyticsQuerySchema(Schema):
    time_range = fields.String(
        load_default="24h",
        validate=validate.OneOf(list(TIME_RANGES)),
        metadata={"description": "The window ending now"},
    )
    interval = fields.String(
        validate=validate.OneOf(list(UNITS)),
        metadata={
            "description": "Bucket width of /trends, validated on every endpoint: minute only"
            " for 1h; hour for 1h, 24h and 7d; day for 24h, 7d and 30d. Default: minute (1h),"
            " hour (24h, 7d), day (30d)."
        },
    )
    workflow_id = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Only this workflow (slug)"},
    )

    @validates_schema
    def check_interval_fits_range(self, data: dict[str, Any], **_: Any) -> None:
        interval, time_range = data.get("interval"), data.get("time_range")
        if interval is None or time_range not in INTERVALS_FOR:
            return
        allowed = INTERVALS_FOR[time_range]
        if interval not in allowed:
            raise ValidationError(
                f"interval {interval!r} does not fit time_range {time_range!r};"
                f" use one of: {', '.join(allowed)}",
                "interval",
            )

    @post_load
    def default_interval(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data.setdefault("interval", DEFAULT_INTERVAL[data["time_range"]])
        return data


class AnalyticsPageQuerySchema(AnalyticsQuerySchema, PageQuerySchema):
    pass


class AnalyticsErrorsQuerySchema(AnalyticsQuerySchema):
    limit = fields.Integer(
        load_default=10,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "How many groups and how many recent failures"},
    )


def _counts(description: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": description},
    )


class AnalyticsWindowSchema(Schema):
    time_range = fields.String(required=True)
    start = fields.DateTime(required=True, metadata={"description": "Window start (UTC)"})
    end = fields.DateTime(required=True, metadata={"description": "Window end: now (UTC)"})
    workflow_id = fields.String(allow_none=True)


class ExecutionCountsSchema(Schema):
    total = fields.Integer(required=True)
    by_status = _counts("Every execution status, zero included")
    by_result = _counts("Every result of finished executions, zero included")


class WorkflowStatsSchema(Schema):
    workflow_id = fields.String(required=True)
    total = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    success_rate = fields.Float(allow_none=True, metadata=_RATE)
    avg_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    last_run_at = fields.DateTime(
        required=True, metadata={"description": "Newest execution in the window"}
    )


class AnalyticsDashboardSchema(AnalyticsWindowSchema):
    executions = fields.Nested(ExecutionCountsSchema, required=True)
    success_rate = fields.Float(allow_none=True, metadata=_RATE)
    avg_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    p95_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    active = fields.Integer(
        required=True, metadata={"description": "Pending + running now (any start time)"}
    )
    waiting = fields.Integer(required=True, metadata={"description": "Waiting now"})
    pending_approvals = fields.Integer(required=True, metadata={"description": "Pending now"})
    events_received = fields.Integer(
        required=True,
        metadata={"description": "Events in the window (with workflow_id: those it triggered)"},
    )
    top_workflows = fields.List(
        fields.Nested(WorkflowStatsSchema),
        required=True,
        metadata={"description": "The 5 busiest workflows of the window"},
    )


class AnalyticsStatsSchema(AnalyticsWindowSchema):
    total = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    by_status = _counts("Every execution status, zero included")
    by_result = _counts("Every result, zero included")
    error_types = _counts("error_type of executions that have one (failed, timed out...)")
    success_rate = fields.Float(allow_none=True, metadata=_RATE)
    avg_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    min_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    max_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    p50_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    p95_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    p99_duration_ms = fields.Float(allow_none=True, metadata=_MS)


class TrendBucketSchema(Schema):
    bucket = fields.DateTime(required=True, metadata={"description": "Bucket start (UTC)"})
    total = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    in_progress = fields.Integer(
        required=True, metadata={"description": "Pending, running, waiting or paused"}
    )
    avg_duration_ms = fields.Float(allow_none=True, metadata=_MS)


class AnalyticsTrendsSchema(AnalyticsWindowSchema):
    interval = fields.String(required=True)
    buckets = fields.List(
        fields.Nested(TrendBucketSchema),
        required=True,
        metadata={"description": "Every bucket of the window, oldest first, empty ones as 0"},
    )


class WorkflowStatsPageSchema(AnalyticsWindowSchema):
    workflows = fields.List(fields.Nested(WorkflowStatsSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "Workflows with executions"})
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)


class ErrorGroupSchema(Schema):
    error_type = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    count = fields.Integer(required=True)
    last_seen = fields.DateTime(required=True)
    workflow_ids = fields.List(fields.String(), required=True)


class RecentFailureSchema(Schema):
    execution_id = fields.UUID(required=True)
    workflow_id = fields.String(required=True)
    workflow_version = fields.String(required=True)
    error_type = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    failed_at = fields.DateTime(required=True)


class AnalyticsErrorsSchema(AnalyticsWindowSchema):
    total_failed = fields.Integer(required=True)
    groups = fields.List(
        fields.Nested(ErrorGroupSchema),
        required=True,
        metadata={"description": "Failed executions by (error_type, error_message), top first"},
    )
    recent = fields.List(
        fields.Nested(RecentFailureSchema),
        required=True,
        metadata={"description": "The latest failed executions, newest first"},
    )


class StepStatsSchema(Schema):
    workflow_id = fields.String(required=True)
    step_id = fields.String(required=True)
    step_type = fields.String(required=True)
    runs = fields.Integer(required=True, metadata={"description": "Step-run rows (attempts)"})
    completed = fields.Integer(required=True)
    failures = fields.Integer(required=True)
    skipped = fields.Integer(required=True)
    retries = fields.Integer(required=True, metadata={"description": "Attempts after the first"})
    avg_duration_ms = fields.Float(allow_none=True, metadata=_MS)
    p95_duration_ms = fields.Float(allow_none=True, metadata=_MS)


class StepStatsPageSchema(AnalyticsWindowSchema):
    steps = fields.List(fields.Nested(StepStatsSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
