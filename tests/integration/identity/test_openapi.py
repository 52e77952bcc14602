"""Every identity endpoint is in the OpenAPI document with its schemas, permission and errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import API

# path -> method -> (permission or None for public/any user, error codes documented)
ENDPOINTS: dict[str, dict[str, tuple[str | None, set[int]]]] = {
    "/auth/register": {"post": (None, {409, 422, 429})},
    "/auth/login": {"post": (None, {401, 422, 429})},
    "/auth/refresh": {"post": (None, {401, 422, 429})},
    "/auth/logout": {"post": (None, {401, 403})},
    "/auth/me": {"get": (None, {401})},
    "/auth/change-password": {"post": (None, {401, 403, 422, 429})},
    "/auth/switch-organization": {"post": (None, {401, 403, 404, 422})},
    "/auth/api-keys": {
        "get": ("apikey:read", {401, 403, 422}),
        "post": ("apikey:create", {401, 403, 422}),
    },
    "/auth/api-keys/{key_id}": {"delete": ("apikey:revoke", {401, 403, 404})},
    "/organizations": {"get": (None, {401}), "post": (None, {401, 403, 422})},
    "/organizations/{organization_id}": {
        "get": ("organization:read", {401, 403, 404}),
        "put": ("organization:update", {401, 403, 404, 422}),
        "delete": ("organization:delete", {401, 403, 404}),
    },
    "/organizations/{organization_id}/members": {
        "get": ("organization:read", {401, 403, 404}),
        "post": ("organization:members", {401, 403, 404, 409, 422}),
    },
    "/organizations/{organization_id}/members/{user_id}": {
        "put": ("organization:members", {401, 403, 404, 409, 422}),
        "delete": ("organization:members", {401, 403, 404, 409}),
    },
    "/audit-logs": {"get": ("audit:read", {401, 403, 422})},
    "/audit-logs/{entry_id}": {"get": ("audit:read", {401, 403, 404})},
}
CASES = [
    pytest.param(path, method, permission, codes, id=f"{method} {path}")
    for path, methods in ENDPOINTS.items()
    for method, (permission, codes) in methods.items()
]


@pytest.fixture(scope="module")
def spec(app: Any) -> dict[str, Any]:
    response = app.test_client().get(f"{API}/openapi.json")
    assert response.status_code == 200
    return dict(response.json)


@pytest.mark.parametrize(("path", "method", "permission", "codes"), CASES)
def test_the_endpoint_is_documented(
    spec: dict[str, Any], path: str, method: str, permission: str | None, codes: set[int]
) -> None:
    operation = spec["paths"][API + path][method]

    assert operation.get("summary")
    if permission:
        assert f"Requires `{permission}`" in operation["description"]
    documented = {int(code) for code in operation["responses"] if code != "default"}
    assert codes <= documented
    successes = {code for code in documented if code < 400}
    assert len(successes) == 1
    for code in codes:
        assert (
            operation["responses"][str(code)]["$ref"].endswith("/" + _status_name(code))
            or "content" in operation["responses"][str(code)]
        )
    if method in {"post", "put"} and path not in {"/auth/logout"}:
        assert "requestBody" in operation


def _status_name(code: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(code).name


def test_the_error_responses_use_the_one_error_schema(spec: dict[str, Any]) -> None:
    unauthorized = spec["components"]["responses"]["UNAUTHORIZED"]
    schema = unauthorized["content"]["application/json"]["schema"]["$ref"]

    assert schema.endswith("/Error")
    assert set(spec["components"]["schemas"]["Error"]["properties"]) >= {
        "code",
        "status",
        "message",
        "errors",
    }


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login", "/auth/refresh"])
def test_public_endpoints_need_no_credentials_in_the_document(
    spec: dict[str, Any], path: str
) -> None:
    assert spec["paths"][API + path]["post"]["security"] == []
