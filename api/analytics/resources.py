"""HTTP endpoints of analytics: read-only reports over the caller's organization."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.analytics import service
from api.analytics.schemas import (
    AnalyticsDashboardSchema,
    AnalyticsErrorsQuerySchema,
    AnalyticsErrorsSchema,
    AnalyticsPageQuerySchema,
    AnalyticsQuerySchema,
    AnalyticsStatsSchema,
    AnalyticsTrendsSchema,
    StepStatsPageSchema,
    WorkflowStatsPageSchema,
)
from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires

blp = resource_blueprint(
    "analytics",
    __name__,
    description="Execution, workflow, error and step statistics. Query parameters:"
    " `time_range` (1h, 24h, 7d, 30d; default 24h), `interval` (minute, hour, day; checked"
    " against the range), `workflow_id` (slug).",
)


@blp.route("/analytics/dashboard")
class Dashboard(MethodView):
    @requires("analytics:read")
    @blp.arguments(AnalyticsQuerySchema, location="query")
    @blp.response(200, AnalyticsDashboardSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """The overview: executions of the window, what is in flight now, the busiest workflows.

        Requires `analytics:read`. `active` (pending + running), `waiting` and
        `pending_approvals` are current counts, not limited to the window.
        """
        return service.dashboard(current_principal(), params)


@blp.route("/analytics/stats")
class Stats(MethodView):
    @requires("analytics:read")
    @blp.arguments(AnalyticsQuerySchema, location="query")
    @blp.response(200, AnalyticsStatsSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """Totals by status, result and error type; success rate; duration percentiles.

        Requires `analytics:read`. Percentiles are `percentile_cont` (linear
        interpolation) over executions that recorded a duration.
        """
        return service.stats(current_principal(), params)


@blp.route("/analytics/trends")
class Trends(MethodView):
    @requires("analytics:read")
    @blp.arguments(AnalyticsQuerySchema, location="query")
    @blp.response(200, AnalyticsTrendsSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """Executions per UTC bucket of `interval` over the window, empty buckets as zeros.

        Requires `analytics:read`. 422 when `interval` does not fit `time_range`
        (minute only for 1h; day not for 1h; hour not for 30d).
        """
        return service.trends(current_principal(), params)


@blp.route("/analytics/workflows")
class Workflows(MethodView):
    @requires("analytics:read")
    @blp.arguments(AnalyticsPageQuerySchema, location="query")
    @blp.response(200, WorkflowStatsPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """Per workflow slug: executions, outcomes, success rate, mean duration, last run.

        Requires `analytics:read`. Busiest first, paginated (`page`, `page_size`).
        """
        return service.workflows(current_principal(), params)


@blp.route("/analytics/errors")
class Errors(MethodView):
    @requires("analytics:read")
    @blp.arguments(AnalyticsErrorsQuerySchema, location="query")
    @blp.response(200, AnalyticsErrorsSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """Failed executions of the window grouped by error, and the most recent ones.

        Requires `analytics:read`. `limit` (1..100, default 10) bounds both lists.
        """
        return service.errors(current_principal(), params)


@blp.route("/analytics/steps")
class Steps(MethodView):
    @requires("analytics:read")
    @blp.arguments(AnalyticsPageQuerySchema, location="query")
    @blp.response(200, StepStatsPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """Per (workflow, step id, step type): attempts, failures, retries, durations.

        Requires `analytics:read`. Step runs belong to the window by their own
        creation time. Most-run first, paginated.
        """
        return service.steps(current_principal(), params)
