"""HTTP endpoints of the record store (read-only)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.records import service
from api.records.schemas import RecordListQuerySchema, RecordPageSchema, RecordSchema
from models.business import Record

blp = resource_blueprint("records", __name__, description="Business records kept by workflows")


@blp.route("/records")
class Records(MethodView):
    @requires("record:read")
    @blp.arguments(RecordListQuerySchema, location="query")
    @blp.response(200, RecordPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List records, most recently updated first.

        Requires `record:read`. Filters: `entity`, `entity_id` (exact).
        """
        return service.list_records(current_principal().organization_id, query)


@blp.route("/records/<string:entity>/<path:entity_id>")
class RecordByKey(MethodView):
    @requires("record:read")
    @blp.response(200, RecordSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, entity: str, entity_id: str) -> Record:
        """Read the record of one entity.

        Requires `record:read`.
        """
        return service.get_record(current_principal().organization_id, entity, entity_id)
