"""HTTP endpoints of executions, plus starting (`execute`) and dry-running (`test`) a workflow.

The two workflow routes live here rather than in api/workflows because they
are about runs, not definitions.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.executions import service
from api.executions.dry_run import dry_run_workflow
from api.executions.schemas import (
    CancelBodySchema,
    DryRunSchema,
    ExecuteBodySchema,
    ExecutionListQuerySchema,
    ExecutionPageSchema,
    ExecutionSchema,
    TraceSchema,
)
from api.pagination import PageQuerySchema
from models.execution import Execution

blp = resource_blueprint(
    "executions", __name__, "Executions of workflows: read, trace, control, start"
)


@blp.route("/executions")
class Executions(MethodView):
    @requires("execution:read")
    @blp.arguments(ExecutionListQuerySchema, location="query")
    @blp.response(200, ExecutionPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 422)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List executions, newest first.

        Requires `execution:read`. Filters: `workflow_id` (slug), `status`,
        `since`/`until` (creation time).
        """
        return service.list_executions(current_principal().organization_id, query)


@blp.route("/executions/paused")
class PausedExecutions(MethodView):
    @requires("execution:read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ExecutionPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 422)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List paused executions. Requires `execution:read`."""
        return service.list_executions(
            current_principal().organization_id, {**query, "status": "paused"}
        )


@blp.route("/executions/<uuid:execution_id>")
class ExecutionById(MethodView):
    @requires("execution:read")
    @blp.response(200, ExecutionSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, execution_id: uuid.UUID) -> Execution:
        """Read one execution. Requires `execution:read`."""
        return service.get_execution(current_principal().organization_id, execution_id)


@blp.route("/executions/<uuid:execution_id>/trace")
class ExecutionTrace(MethodView):
    @requires("execution:read")
    @blp.response(200, TraceSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, execution_id: uuid.UUID) -> dict[str, Any]:
        """The execution and every step attempt (one row per attempt), in time order.

        Requires `execution:read`.
        """
        return service.get_trace(current_principal().organization_id, execution_id)


@blp.route("/executions/<uuid:execution_id>/pause")
class PauseExecution(MethodView):
    @requires("execution:pause")
    @blp.response(200, ExecutionSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, execution_id: uuid.UUID) -> Execution:
        """Pause a pending, running or waiting execution.

        Requires `execution:pause`. The running step finishes; the next one is
        not dispatched until resumed. Idempotent; 409 for finished executions.
        """
        return service.pause(current_principal(), execution_id)


@blp.route("/executions/<uuid:execution_id>/resume")
class ResumeExecution(MethodView):
    @requires("execution:resume")
    @blp.response(200, ExecutionSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, execution_id: uuid.UUID) -> Execution:
        """Resume a paused execution (its current step is dispatched again).

        Requires `execution:resume`. Idempotent; 409 for finished executions.
        """
        return service.resume(current_principal(), execution_id)


@blp.route("/executions/<uuid:execution_id>/cancel")
class CancelExecution(MethodView):
    @requires("execution:cancel")
    @blp.arguments(CancelBodySchema, required=False)
    @blp.response(200, ExecutionSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, body: dict[str, Any], execution_id: uuid.UUID) -> Execution:
        """Cancel an unfinished execution (`error_type` = `cancelled`).

        Requires `execution:cancel`. Idempotent; 409 for completed or failed ones.
        """
        return service.cancel(current_principal(), execution_id, (body or {}).get("reason"))


@blp.route("/executions/<uuid:execution_id>/retry")
class RetryExecution(MethodView):
    @requires("execution:retry")
    @blp.response(200, ExecutionSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def post(self, execution_id: uuid.UUID) -> Execution:
        """Re-run a failed execution from its failed step, as a new attempt group.

        Requires `execution:retry`. Effects of the re-run carry new idempotency
        keys. Repeating it on the re-running execution changes nothing; 409 for
        executions that did not fail.
        """
        return service.retry(current_principal(), execution_id)


@blp.route("/workflows/<uuid:workflow_row_id>/execute")
class ExecuteWorkflow(MethodView):
    @requires("workflow:execute")
    @blp.arguments(ExecuteBodySchema, required=False)
    @blp.response(202, ExecutionSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409, 422)
    def post(self, body: dict[str, Any], workflow_row_id: uuid.UUID) -> Execution:
        """Start this workflow version manually with `{payload}`.

        Requires `workflow:execute`. Any enabled version can be started this
        way, whatever its trigger; 409 when the version is disabled.
        """
        payload = (body or {}).get("payload") or {}
        return service.execute(current_principal(), workflow_row_id, payload)


@blp.route("/workflows/<uuid:workflow_row_id>/test")
class TestWorkflow(MethodView):
    @requires("workflow:execute")
    @blp.arguments(ExecuteBodySchema, required=False)
    @blp.response(200, DryRunSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 422)
    def post(self, body: dict[str, Any], workflow_row_id: uuid.UUID) -> dict[str, Any]:
        """Dry-run this workflow version on `{payload}`: the path and decisions, no side effects.

        Requires `workflow:execute`. HTTP calls, notifications and record writes
        are recorded as `effects`, not performed; so is each `context.load` fetch
        (`{"kind": "load", "would": "fetch"}`, reported `skipped` in `_enrichment`).
        """
        workflow = service.load_workflow(current_principal().organization_id, workflow_row_id)
        payload = (body or {}).get("payload") or {}
        return dry_run_workflow(workflow, payload)
