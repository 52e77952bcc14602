"""HTTP endpoints of rules. `{rule_row_id}` is the rule's row id (UUID)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.rules import service
from api.rules.schemas import (
    RuleCreateSchema,
    RuleListQuerySchema,
    RulePageSchema,
    RuleSchema,
    RuleTestResultSchema,
    RuleTestSchema,
    RuleUpdateSchema,
)
from models.workflow import Rule

blp = resource_blueprint(
    "rules", __name__, description="Named, reusable condition sets (`rule_id`)"
)


@blp.route("/rules")
class Rules(MethodView):
    @requires("rule:read")
    @blp.arguments(RuleListQuerySchema, location="query")
    @blp.response(200, RulePageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List rules, newest first.

        Requires `rule:read`. Filters: `search` (name or rule_id), `enabled`.
        """
        return service.list_rules(current_principal().organization_id, query)

    @requires("rule:create")
    @blp.arguments(RuleCreateSchema)
    @blp.response(201, RuleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 409)
    def post(self, data: dict[str, Any]) -> Rule:
        """Create a rule.

        Requires `rule:create`. 422 lists every condition problem at its JSON
        path (`conditions[0].operator`...); 409 when the rule_id exists.
        """
        return service.create_rule(current_principal(), data)


@blp.route("/rules/<uuid:rule_row_id>")
class RuleById(MethodView):
    @requires("rule:read")
    @blp.response(200, RuleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, rule_row_id: uuid.UUID) -> Rule:
        """Read one rule.

        Requires `rule:read`.
        """
        return service.get_rule(current_principal().organization_id, rule_row_id)

    @requires("rule:update")
    @blp.arguments(RuleUpdateSchema)
    @blp.response(200, RuleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def put(self, data: dict[str, Any], rule_row_id: uuid.UUID) -> Rule:
        """Replace a rule's name, description and conditions (and `enabled` when given).

        Requires `rule:update`. `rule_id` is immutable: omit it or repeat it.
        """
        return service.update_rule(current_principal(), rule_row_id, data)

    @requires("rule:delete")
    @blp.response(204)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404, 409)
    def delete(self, rule_row_id: uuid.UUID) -> None:
        """Delete a rule.

        Requires `rule:delete`. 409 while an enabled workflow version references it.
        """
        service.delete_rule(current_principal(), rule_row_id)


@blp.route("/rules/<uuid:rule_row_id>/enable")
class RuleEnable(MethodView):
    @requires("rule:update")
    @blp.response(200, RuleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def post(self, rule_row_id: uuid.UUID) -> Rule:
        """Enable a rule (idempotent).

        Requires `rule:update`.
        """
        return service.set_enabled(current_principal(), rule_row_id, enabled=True)


@blp.route("/rules/<uuid:rule_row_id>/disable")
class RuleDisable(MethodView):
    @requires("rule:update")
    @blp.response(200, RuleSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def post(self, rule_row_id: uuid.UUID) -> Rule:
        """Disable a rule (idempotent); references to it then stop resolving.

        Requires `rule:update`.
        """
        return service.set_enabled(current_principal(), rule_row_id, enabled=False)


@blp.route("/rules/<uuid:rule_row_id>/test")
class RuleTest(MethodView):
    @requires("rule:read")
    @blp.arguments(RuleTestSchema)
    @blp.response(200, RuleTestResultSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def post(self, data: dict[str, Any], rule_row_id: uuid.UUID) -> dict[str, Any]:
        """Evaluate the rule's conditions against a sample payload, with no side effects.

        Requires `rule:read`. `matched` is true when every condition holds;
        `results` explains each condition leaf by leaf.
        """
        return service.evaluate_rule(
            current_principal().organization_id, rule_row_id, data["payload"]
        )
