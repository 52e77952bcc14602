"""The API skeleton: health, readiness, the one error shape, headers, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app


def test_health_answers_ok(client: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_checks_database_redis_and_migrations(client: Any) -> None:
    response = client.get("/ready")
    assert response.status_code == 200, response.json
    checks = response.json["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"]
    assert checks["migrations"]["current"] == checks["migrations"]["head"]


def test_ready_is_503_with_details_when_redis_is_unreachable(base_settings: dict[str, Any]) -> None:
    app = create_app({**base_settings, "redis_url": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    body = response.json
    assert body["code"] == 503 and body["status"] == "Service Unavailable"
    assert body["errors"]["redis"]["ok"] is False
    assert body["errors"]["database"]["ok"] is True
    app.extensions["iw"].dispose()


def test_ready_is_503_when_the_database_is_unreachable(base_settings: dict[str, Any]) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/nothing"
    app = create_app({**base_settings, "database_url": url})
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.json["errors"]["database"]["ok"] is False
    assert response.json["errors"]["migrations"]["ok"] is False


def test_ready_is_503_when_migrations_are_behind(base_settings: dict[str, Any]) -> None:
    from sqlalchemy import text

    from models.migration import create_database_if_missing, drop_database

    url = base_settings["database_url"] + "_behind"
    create_database_if_missing(url)
    app = create_app({**base_settings, "database_url": url})
    try:
        with app.extensions["iw"].db_engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num varchar(32))"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
        response = app.test_client().get("/ready")
        assert response.status_code == 503
        assert response.json["errors"]["migrations"] == {
            "ok": False,
            "current": "0001",
            "head": response.json["errors"]["migrations"]["head"],
        }
    finally:
        app.extensions["iw"].dispose()
        drop_database(url)


def assert_error_shape(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code
    assert response.is_json, response.data
    body = response.json
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_unknown_path_is_a_json_404(client: Any) -> None:
    assert_error_shape(client.get("/api/v1/no-such-thing"), 404)


def test_wrong_method_is_a_json_405_with_allow(client: Any) -> None:
    response = client.delete("/health")
    assert_error_shape(response, 405)
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_a_json_413(base_settings: dict[str, Any]) -> None:
    app = create_app({**base_settings, "max_body_bytes": 1024})
    response = app.test_client().post(
        "/api/v1/auth/login", data="x" * 5000, content_type="application/json"
    )
    assert_error_shape(response, 413)
    app.extensions["iw"].dispose()


def test_unexpected_exception_is_a_json_500_without_details(base_settings: dict[str, Any]) -> None:
    app = create_app(base_settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    body = assert_error_shape(response, 500)
    assert "secret" not in body["message"]
    app.extensions["iw"].dispose()


def test_request_id_is_echoed_or_generated(client: Any) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == (
        "abc-123"
    )
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    # Header injection attempts are replaced, not echoed.
    assert client.get("/health", headers={"X-Request-ID": "a b\tc"}).headers["X-Request-ID"] != (
        "a b\tc"
    )


def test_security_headers_are_set(client: Any) -> None:
    headers = client.get("/health").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers
    secure = client.get("/health", headers={"X-Forwarded-Proto": "https"}).headers
    assert "max-age" in secure["Strict-Transport-Security"]


@pytest.fixture
def cors_app(base_settings: dict[str, Any]) -> Any:
    app = create_app({**base_settings, "cors_origins": ("https://console.example.com",)})
    yield app
    app.extensions["iw"].dispose()


def test_cors_allows_listed_origins_with_auth_headers(cors_app: Any) -> None:
    response = cors_app.test_client().options(
        "/api/v1/workflows",
        headers={
            "Origin": "https://console.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, X-API-Key",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://console.example.com"
    allowed = response.headers["Access-Control-Allow-Headers"]
    assert "Authorization" in allowed and "X-API-Key" in allowed


def test_cors_ignores_unlisted_origins(cors_app: Any) -> None:
    response = cors_app.test_client().get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_openapi_document_and_swagger_ui_are_served(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert spec.json["openapi"].startswith("3.")
    assert "bearerAuth" in spec.json["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.data.lower()
