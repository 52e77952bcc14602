"""HTTP endpoints of workflow definitions. `{workflow_row_id}` is the version's row id."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.pagination import PageQuerySchema
from api.workflows import service, shadow
from api.workflows.schemas import (
    DeleteQuerySchema,
    ShadowBodySchema,
    ShadowReportSchema,
    ValidationResultSchema,
    WorkflowBodySchema,
    WorkflowListQuerySchema,
    WorkflowPageSchema,
    WorkflowSchema,
    WorkflowVersionPageSchema,
)
from models.workflow import Workflow

blp = resource_blueprint(
    "workflows", __name__, description="Workflow definitions, their versions and validation"
)


@blp.route("/workflows")
class Workflows(MethodView):
    @requires("workflow:read")
    @blp.arguments(WorkflowListQuerySchema, location="query")
    @blp.response(200, WorkflowPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List workflow versions, newest first.

        Requires `workflow:read`. Filters: `search` (name or workflow_id), `tag`
        (repeatable or comma-separated; all must be present), `enabled`,
        `workflow_id`, `trigger_type`; `latest=true` keeps only the newest
        matching version of each workflow_id.
        """
        return service.list_workflows(current_principal().organization_id, query)

    @requires("workflow:create")
    @blp.arguments(WorkflowBodySchema)
    @blp.response(201, WorkflowSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 409)
    def post(self, body: dict[str, Any]) -> Workflow:
        """Create a workflow version.

        Requires `workflow:create`. Accepts the wrapped layout
        (`{workflow_id, version, name, description?, tags?, enabled?, definition}`)
        or the flat one (trigger, context, steps, timeout at the top level) and
        stores it normalised. 422 lists every problem at its JSON path; 409 when
        the (workflow_id, version) exists. Created enabled, it disables the other
        versions of the same workflow_id.
        """
        return service.create_workflow(current_principal(), body)


@blp.route("/workflows/validate")
class WorkflowValidation(MethodView):
    @requires("workflow:create")
    @blp.arguments(WorkflowBodySchema)
    @blp.response(200, ValidationResultSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate a workflow without storing it.

        Requires `workflow:create`. 200 with the normalised workflow, or 422 with
        every problem at its JSON path, exactly as on create.
        """
        return {"valid": True, "definition": service.validate(body)}


@blp.route("/workflows/<uuid:workflow_row_id>")
class WorkflowById(MethodView):
    @requires("workflow:read")
    @blp.response(200, WorkflowSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, workflow_row_id: uuid.UUID) -> Workflow:
        """Read one workflow version.

        Requires `workflow:read`.
        """
        return service.get_workflow(current_principal().organization_id, workflow_row_id)

    @requires("workflow:update")
    @blp.arguments(WorkflowBodySchema)
    @blp.response(200, WorkflowSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def put(self, body: dict[str, Any], workflow_row_id: uuid.UUID) -> Workflow:
        """Replace the name, description, tags and definition of one version.

        Requires `workflow:update`. Validated like create. `workflow_id` and
        `version` are immutable: omit them or repeat them unchanged (anything
        else is a 422); `enabled` is ignored (use /enable and /disable). Running
        executions keep the definition they started with.
        """
        return service.update_workflow(current_principal(), workflow_row_id, body)

    @requires("workflow:delete")
    @blp.arguments(DeleteQuerySchema, location="query")
    @blp.response(204)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def delete(self, query: dict[str, Any], workflow_row_id: uuid.UUID) -> None:
        """Delete one workflow version.

        Requires `workflow:delete`. 409 while the version has pending, running,
        waiting or paused executions, unless `force=true`, which cancels them
        (error_type `cancelled`) in the same transaction.
        """
        service.delete_workflow(current_principal(), workflow_row_id, force=query["force"])


@blp.route("/workflows/<uuid:workflow_row_id>/enable")
class WorkflowEnable(MethodView):
    @requires("workflow:update")
    @blp.response(200, WorkflowSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, workflow_row_id: uuid.UUID) -> Workflow:
        """Enable this version (idempotent); every other version of it is disabled.

        Requires `workflow:update`.
        """
        return service.set_enabled(current_principal(), workflow_row_id, enabled=True)


@blp.route("/workflows/<uuid:workflow_row_id>/disable")
class WorkflowDisable(MethodView):
    @requires("workflow:update")
    @blp.response(200, WorkflowSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def post(self, workflow_row_id: uuid.UUID) -> Workflow:
        """Disable this version (idempotent).

        Requires `workflow:update`.
        """
        return service.set_enabled(current_principal(), workflow_row_id, enabled=False)


@blp.route("/workflows/<uuid:workflow_row_id>/versions")
class WorkflowVersions(MethodView):
    @requires("workflow:read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, WorkflowVersionPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, query: dict[str, Any], workflow_row_id: uuid.UUID) -> dict[str, Any]:
        """Every version of this version's workflow_id, newest first, as `versions`.

        Requires `workflow:read`.
        """
        return service.list_versions(
            current_principal().organization_id,
            workflow_row_id,
            query["page"],
            query["page_size"],
        )


@blp.route("/workflows/<uuid:workflow_row_id>/shadow")
class ShadowRun(MethodView):
    @requires("workflow:read")
    @requires("execution:read")
    @blp.arguments(ShadowBodySchema)
    @blp.response(200, ShadowReportSchema)
    @blp.alt_response(202, schema=ShadowReportSchema, description="Queued: read it by its id")
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 422, 503)
    def post(self, body: dict[str, Any], workflow_row_id: uuid.UUID) -> tuple[dict[str, Any], int]:
        """Replay recorded events through a candidate version and compare with what ran.

        Requires `workflow:read` and `execution:read`. Every recorded event of the
        organization that this workflow's trigger or the candidate's matches, in the
        selection, is run through `candidate` in the engine's dry run (nothing is
        performed: would-be HTTP calls, notifications and record writes are listed
        as `would`; `context.load` takes what the recorded run loaded, and lists a
        resource the record lacks as a would-be fetch) and compared with the
        execution the event started: result, path, condition verdicts, approvals
        asked. Approvals and waits are answered as they really were; otherwise the
        replay stops there, `unresolved`. 200 with the report when it ran at once (at
        most 500 events, or `event_ids`), else 202 with the pending report, run by a
        worker; read it with GET `.../shadow/{report_id}`.
        """
        return shadow.start_shadow(current_principal(), workflow_row_id, body)


@blp.route("/workflows/<uuid:workflow_row_id>/shadow/<uuid:report_id>")
class ShadowReportView(MethodView):
    @requires("workflow:read")
    @requires("execution:read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ShadowReportSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 422)
    def get(
        self, query: dict[str, Any], workflow_row_id: uuid.UUID, report_id: uuid.UUID
    ) -> dict[str, Any]:
        """A shadow report, its summary and one page of its differences.

        Requires `workflow:read` and `execution:read`.
        """
        return shadow.get_report(
            current_principal().organization_id,
            workflow_row_id,
            report_id,
            query["page"],
            query["page_size"],
        )
