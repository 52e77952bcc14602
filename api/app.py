"""The application factory: configuration, services, middleware, blueprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_smorest import Api
from sqlalchemy import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from api.errors import ErrorSchema, register_error_handlers
from api.inputs import guard_request
from api.middleware import install_middleware
from api.observability import install_http_metrics
from api.ratelimit import install_rate_limits
from api.services import Services, install
from api.structured_logging import configure_logging
from models.base import Base
from models.config import Settings, load_settings
from models.db import make_db_engine, make_session_factory
from models.prepared import send_plain_sql
from tasks.instrumentation import instrument_db_engine, instrumented_redis

API_PREFIX = "/api/v1"


class PlatformApi(Api):
    ERROR_SCHEMA = ErrorSchema


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the WSGI app. `config` is a Settings or a mapping of overrides (tests)."""
    settings = config if isinstance(config, Settings) else load_settings(overrides=config)
    configure_logging(settings.log_level)

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="Intelligent Workflows",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                }
            },
            "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        },
    )
    db_engine = _db_engine(settings)
    install(
        app,
        Services(
            settings=settings,
            db_engine=db_engine,
            autocommit_engine=_db_engine(settings, autocommit=True),
            session_factory=make_session_factory(db_engine),
            redis=instrumented_redis(
                settings.redis_url,
                socket_timeout=5,
                max_connections=settings.redis_max_connections,
            ),
        ),
    )
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        # Behind N proxies the client's address is the Nth from the right of
        # X-Forwarded-For; anything further left was written by the client.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    install_middleware(app)
    if settings.http_metrics_enabled:
        install_http_metrics(app)
    install_rate_limits(app, settings)
    app.before_request(guard_request)
    api = PlatformApi(app)
    register_error_handlers(app)
    _register_blueprints(app, api)
    return app


def _db_engine(settings: Settings, *, autocommit: bool = False) -> Engine:
    db_engine = make_db_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        application_name="iw-api",
        autocommit=autocommit,
    )
    instrument_db_engine(db_engine, frozenset(Base.metadata.tables))
    if not settings.db_prepared_statements:  # behind a transaction-pooling proxy
        send_plain_sql(db_engine)
    return db_engine


def _register_blueprints(app: Flask, api: Api) -> None:
    from api.console import blp as console
    from api.health.resources import blp as health
    from api.observability import blp as metrics_blp

    app.register_blueprint(health)
    app.register_blueprint(metrics_blp)
    for blueprint in _resource_blueprints():
        api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    # The console answers every other path with its index.html, so it goes last.
    app.register_blueprint(console)


# One blueprint package per resource; the order is the order of the OpenAPI document.
RESOURCES = (
    "auth",
    "api_keys",
    "organizations",
    "audit_logs",
    "workflows",
    "rules",
    "records",
    "events",
    "executions",
    "streams",
    "approvals",
    "schedules",
    "analytics",
    "ai",
)


def _resource_blueprints() -> list[Any]:
    """Each resource package exposes `blp` in its resources module; a missing one is an error."""
    import importlib

    return [importlib.import_module(f"api.{name}.resources").blp for name in RESOURCES]
