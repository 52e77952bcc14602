"""HTTP endpoints of /auth/api-keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView

from api.api_keys import keyring
from api.api_keys.schemas import ApiKeyCreatedSchema, ApiKeyCreateSchema, ApiKeySchema
from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.pagination import PageQuerySchema, page_envelope_schema
from api.services import services

blp = resource_blueprint("api_keys", __name__, "API keys (X-API-Key) of the organization")

ApiKeyPageSchema = page_envelope_schema("api_keys", ApiKeySchema)
_KEY_FIELDS = tuple(ApiKeySchema().fields)


@blp.route("/auth/api-keys")
class ApiKeys(MethodView):
    @requires("apikey:read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ApiKeyPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List the organization's API keys, newest first

        Requires `apikey:read`. Never shows a key, only its `key_prefix`;
        revoked and expired keys are listed with `revoked_at` / `expires_at`.
        """
        with services().session_factory() as session:
            return keyring.list_api_keys(
                session, current_principal(), query["page"], query["page_size"]
            )

    @requires("apikey:create")
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an API key

        Requires `apikey:create`. `scopes` (default: all of the caller's
        permissions) must be permissions the caller holds, else 422 naming the
        others; a key's effective permissions are also capped by its creator's
        role at the time of use. Expiry: `expires_in_days` or `expires_at`, or
        never. The key (`iwk_...`) is in this answer only; it is stored hashed.
        """
        with services().unit_of_work() as uow:
            issued = keyring.create_api_key(
                uow.session, current_principal(), body, datetime.now(UTC)
            )
            uow.commit()
        key = issued.key
        return {name: getattr(key, name) for name in _KEY_FIELDS} | {"api_key": issued.raw_key}


@blp.route("/auth/api-keys/<uuid:key_id>")
class ApiKeyById(MethodView):
    @requires("apikey:revoke")
    @blp.response(204)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def delete(self, key_id: uuid.UUID) -> None:
        """Revoke an API key

        Requires `apikey:revoke`. Any key of the organization; 404 for a key of
        another organization. Revoking a revoked key changes nothing (204).
        """
        with services().unit_of_work() as uow:
            keyring.revoke_api_key(uow.session, current_principal(), key_id, datetime.now(UTC))
            uow.commit()
