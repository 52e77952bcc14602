"""HTTP endpoints of schedules. `{workflow_row_id}` is a workflow version's row id (UUID)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.pagination import PageQuerySchema
from api.schedules import service
from api.schedules.schemas import (
    NextRunsQuerySchema,
    NextRunsSchema,
    ScheduleCreateSchema,
    ScheduleListQuerySchema,
    SchedulePageSchema,
    ScheduleSchema,
    ScheduleUpdateSchema,
)
from models.workflow import Schedule

blp = resource_blueprint(
    "schedules", __name__, description="Cron schedules that start workflows at due times"
)


@blp.route("/workflows/<uuid:workflow_row_id>/schedules")
class WorkflowSchedules(MethodView):
    @requires("schedule:read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, SchedulePageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, query: dict[str, Any], workflow_row_id: uuid.UUID) -> dict[str, Any]:
        """List the schedules of one workflow version, newest first.

        Requires `schedule:read`. 404 when the workflow is not in the caller's
        organization.
        """
        return service.list_schedules(
            current_principal().organization_id, query, workflow_row_id=workflow_row_id
        )

    @requires("schedule:create")
    @blp.arguments(ScheduleCreateSchema)
    @blp.response(201, ScheduleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def post(self, data: dict[str, Any], workflow_row_id: uuid.UUID) -> Schedule:
        """Attach a cron schedule to a workflow version.

        Requires `schedule:create`. `cron` is 5-field, 6-field (seconds first)
        or a descriptor (`@hourly`); `timezone` is an IANA name (default UTC).
        422 reports problems under `cron` and `timezone`. `next_run_at` is the
        first due time after now (null when created disabled).
        """
        return service.create_schedule(current_principal(), workflow_row_id, data)


@blp.route("/schedules")
class Schedules(MethodView):
    @requires("schedule:read")
    @blp.arguments(ScheduleListQuerySchema, location="query")
    @blp.response(200, SchedulePageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List the organization's schedules, newest first.

        Requires `schedule:read`. Filters: `workflow_id` (slug), `enabled`.
        """
        return service.list_schedules(current_principal().organization_id, query)


@blp.route("/schedules/<uuid:schedule_id>")
class ScheduleById(MethodView):
    @requires("schedule:read")
    @blp.response(200, ScheduleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, schedule_id: uuid.UUID) -> Schedule:
        """Read one schedule.

        Requires `schedule:read`.
        """
        return service.get_schedule(current_principal().organization_id, schedule_id)

    @requires("schedule:update")
    @blp.arguments(ScheduleUpdateSchema)
    @blp.response(200, ScheduleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def put(self, data: dict[str, Any], schedule_id: uuid.UUID) -> Schedule:
        """Change a schedule's cron, timezone, payload or enabled flag.

        Requires `schedule:update`. Omitted fields keep their value. Changing
        the cron or timezone, or enabling, recomputes `next_run_at` from now;
        disabling clears it. 422 as on create. A schedule that comes from a
        workflow's schedule trigger (`from_trigger`) takes payload changes only:
        409 for its cron, timezone or enabled flag (change the workflow).
        """
        return service.update_schedule(current_principal(), schedule_id, data)

    @requires("schedule:delete")
    @blp.response(204)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def delete(self, schedule_id: uuid.UUID) -> None:
        """Delete a schedule.

        Requires `schedule:delete`. 409 for a schedule that comes from a
        workflow's schedule trigger: disable or delete the workflow version.
        """
        service.delete_schedule(current_principal(), schedule_id)


@blp.route("/schedules/<uuid:schedule_id>/next-runs")
class ScheduleNextRuns(MethodView):
    @requires("schedule:read")
    @blp.arguments(NextRunsQuerySchema, location="query")
    @blp.response(200, NextRunsSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def get(self, query: dict[str, Any], schedule_id: uuid.UUID) -> dict[str, Any]:
        """Preview the next due times after now, in UTC.

        Requires `schedule:read`. `count` is 1..100 (default 5). Computed from
        the cron and timezone whether or not the schedule is enabled.
        """
        return service.upcoming_runs(
            current_principal().organization_id, schedule_id, query["count"]
        )
