"""Settings: defaults, then the environment, then an explicit mapping (tests).

One frozen object built by the composition roots (api.create_app, workers.app)
and passed down; nothing reads os.environ at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from engine.duration import parse_duration

AI_PROVIDERS = frozenset({"", "anthropic", "openai"})
DATABASE_DRIVER_SCHEME = "postgresql+psycopg2"
DEVELOPMENT_JWT_SECRET = "development-only-secret-change-me"  # noqa: S105 - refused outside development


class ConfigurationError(RuntimeError):
    """The environment does not describe a runnable platform."""


def normalize_database_url(url: str) -> str:
    """The URL with the psycopg2 driver the project pins named in its scheme.

    Managed Postgres services and most tools write `postgresql://` or
    `postgres://`. SQLAlchemy 2.1 maps the first to psycopg 3 (not installed)
    and does not know the second; both mean psycopg2 here. Any other scheme,
    driver named or not, is left as written.
    """
    scheme, separator, rest = url.partition("://")
    if separator and scheme.lower() in {"postgresql", "postgres"}:
        return f"{DATABASE_DRIVER_SCHEME}://{rest}"
    return url


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/intelligent_workflows"
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_broker_url: str = ""
    api_port: int = 8080
    worker_metrics_port: int = 9808
    public_url: str = ""
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=7)
    rate_limit_default: str = "100/second"
    rate_limit_auth: str = "60/minute"
    rate_limit_enabled: bool = True
    failed_login_limit: int = 5
    failed_login_window: timedelta = timedelta(minutes=15)
    max_body_bytes: int = 1024 * 1024
    # POST /events/batch: more events than this in one request is a 413.
    event_batch_max: int = 500
    cors_origins: tuple[str, ...] = ()
    # Reverse proxies in front of the API whose X-Forwarded-For/-Proto/-Host are
    # believed; 0 trusts none (the per-IP limit then sees the peer address).
    trusted_proxies: int = 0
    outbound_allow_cidrs: tuple[str, ...] = ()
    outbound_timeout_seconds: float = 10.0
    outbound_max_response_bytes: int = 1024 * 1024
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "workflows@localhost"
    slack_webhook_url: str = ""
    enrichment_base_url: str = ""
    enrichment_cache_seconds: int = 60
    log_level: str = "INFO"
    # Off for sites that run the external celery-exporter instead (docker compose profile).
    celery_metrics_enabled: bool = True
    # Off only to measure the middleware's cost (bench/scrape.py).
    http_metrics_enabled: bool = True
    db_pool_size: int = 5
    # Per process; the stream service's threads need more (gunicorn_streams.conf.py).
    redis_max_connections: int = 100
    # Off behind a transaction-pooling proxy (pgbouncer pool_mode=transaction):
    # the step path's SQL-level prepared statements need session pooling.
    db_prepared_statements: bool = True
    worker_concurrency: int = 2
    workflow_secrets: Mapping[str, str] = field(default_factory=dict)
    job_interval_seconds: Mapping[str, float] = field(default_factory=dict)
    # The LLM behind /ai/*: no provider or no key means AI is disabled (503).
    ai_provider: str = ""
    ai_api_key: str = ""
    ai_model: str = ""
    ai_base_url: str = ""
    ai_timeout_seconds: float = 25.0
    ai_max_retries: int = 2
    ai_rate_limit: str = "30/minute"
    # Signs the audit chain's head exported by GET /audit-logs/verify (HMAC-SHA256);
    # empty: the head is exported unsigned, and the answer says so.
    audit_signing_key: str = ""
    # Live execution streams (api/streams): open streams per principal, the
    # heartbeat interval, and where a host that does not serve them sends them
    # (307): the API under sync workers points at the stream service; empty serves here.
    stream_max_per_principal: int = 10
    stream_heartbeat_seconds: float = 15.0
    stream_redirect_url: str = ""
    # Whether this host may hold a stream itself (no redirect configured): false
    # under gunicorn's sync workers (gunicorn.conf.py), where a stream would hold a
    # worker until its timeout kills it; such a host answers 503 instead.
    serve_streams: bool = True

    def __post_init__(self) -> None:
        # Every reader of the database URL (API, workers, beat) gets it from here.
        object.__setattr__(self, "database_url", normalize_database_url(self.database_url))

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def is_development(self) -> bool:
        return self.environment in {"development", "test"}

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **dict(overrides))

    def check(self) -> Settings:
        if not self.is_development and self.jwt_secret == DEVELOPMENT_JWT_SECRET:
            raise ConfigurationError("JWT_SECRET must be set outside development")
        if len(self.jwt_secret) < 16:
            raise ConfigurationError("JWT_SECRET must be at least 16 characters")
        if self.ai_provider not in AI_PROVIDERS:
            raise ConfigurationError(f"AI_PROVIDER must be one of {sorted(AI_PROVIDERS)}")
        if self.ai_timeout_seconds <= 0 or self.ai_max_retries < 0:
            raise ConfigurationError("AI_TIMEOUT_SECONDS must be > 0 and AI_MAX_RETRIES >= 0")
        if self.audit_signing_key and len(self.audit_signing_key) < 32:
            raise ConfigurationError("AUDIT_SIGNING_KEY must be at least 32 characters")
        if self.stream_max_per_principal < 1 or self.stream_heartbeat_seconds <= 0:
            raise ConfigurationError(
                "STREAM_MAX_PER_PRINCIPAL must be >= 1 and STREAM_HEARTBEAT_SECONDS > 0"
            )
        if self.redis_max_connections < 1:
            raise ConfigurationError("REDIS_MAX_CONNECTIONS must be >= 1")
        if self.trusted_proxies < 0:
            raise ConfigurationError("TRUSTED_PROXIES must be >= 0")
        if self.event_batch_max < 1:
            raise ConfigurationError("EVENT_BATCH_MAX must be >= 1")
        return self


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _secrets(environ: Mapping[str, str]) -> dict[str, str]:
    prefix = "WORKFLOW_SECRET_"
    return {k[len(prefix) :].lower(): v for k, v in environ.items() if k.startswith(prefix)}


def _job_intervals(environ: Mapping[str, str]) -> dict[str, float]:
    prefix = "JOB_INTERVAL_"
    return {
        k[len(prefix) :].lower(): parse_duration(v).total_seconds()
        for k, v in environ.items()
        if k.startswith(prefix)
    }


# environment variable -> (settings field, converter)
_ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "APP_ENV": ("environment", str),
    "DATABASE_URL": ("database_url", str),
    "REDIS_URL": ("redis_url", str),
    "CELERY_BROKER_URL": ("celery_broker_url", str),
    "API_PORT": ("api_port", int),
    "WORKER_METRICS_PORT": ("worker_metrics_port", int),
    "PUBLIC_URL": ("public_url", str),
    "JWT_SECRET": ("jwt_secret", str),
    "ACCESS_TOKEN_TTL": ("access_token_ttl", parse_duration),
    "REFRESH_TOKEN_TTL": ("refresh_token_ttl", parse_duration),
    "RATE_LIMIT_DEFAULT": ("rate_limit_default", str),
    "RATE_LIMIT_AUTH": ("rate_limit_auth", str),
    "RATE_LIMIT_ENABLED": ("rate_limit_enabled", _bool),
    "FAILED_LOGIN_LIMIT": ("failed_login_limit", int),
    "FAILED_LOGIN_WINDOW": ("failed_login_window", parse_duration),
    "MAX_BODY_BYTES": ("max_body_bytes", int),
    "EVENT_BATCH_MAX": ("event_batch_max", int),
    "CORS_ORIGINS": ("cors_origins", _split),
    "TRUSTED_PROXIES": ("trusted_proxies", int),
    "OUTBOUND_ALLOW_CIDRS": ("outbound_allow_cidrs", _split),
    "OUTBOUND_TIMEOUT_SECONDS": ("outbound_timeout_seconds", float),
    "OUTBOUND_MAX_RESPONSE_BYTES": ("outbound_max_response_bytes", int),
    "SMTP_HOST": ("smtp_host", str),
    "SMTP_PORT": ("smtp_port", int),
    "SMTP_FROM": ("smtp_from", str),
    "SLACK_WEBHOOK_URL": ("slack_webhook_url", str),
    "ENRICHMENT_BASE_URL": ("enrichment_base_url", str),
    "ENRICHMENT_CACHE_SECONDS": ("enrichment_cache_seconds", int),
    "LOG_LEVEL": ("log_level", str),
    "CELERY_METRICS_ENABLED": ("celery_metrics_enabled", _bool),
    "HTTP_METRICS_ENABLED": ("http_metrics_enabled", _bool),
    "DB_POOL_SIZE": ("db_pool_size", int),
    "REDIS_MAX_CONNECTIONS": ("redis_max_connections", int),
    "DB_PREPARED_STATEMENTS": ("db_prepared_statements", _bool),
    "WORKER_CONCURRENCY": ("worker_concurrency", int),
    "AI_PROVIDER": ("ai_provider", lambda text: text.strip().lower()),
    "AI_API_KEY": ("ai_api_key", str),
    "AI_MODEL": ("ai_model", str),
    "AI_BASE_URL": ("ai_base_url", str),
    "AI_TIMEOUT_SECONDS": ("ai_timeout_seconds", float),
    "AI_MAX_RETRIES": ("ai_max_retries", int),
    "AI_RATE_LIMIT": ("ai_rate_limit", str),
    "AUDIT_SIGNING_KEY": ("audit_signing_key", str),
    "STREAM_MAX_PER_PRINCIPAL": ("stream_max_per_principal", int),
    "STREAM_HEARTBEAT_SECONDS": ("stream_heartbeat_seconds", float),
    "STREAM_REDIRECT_URL": ("stream_redirect_url", lambda text: text.strip().rstrip("/")),
    "SERVE_STREAMS": ("serve_streams", _bool),
}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from the environment (and overrides), validated."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for variable, (name, convert) in _ENVIRONMENT.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[name] = convert(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{variable}: {exc}") from exc
    values["workflow_secrets"] = _secrets(environ)
    try:
        values["job_interval_seconds"] = _job_intervals(environ)
    except ValueError as exc:
        raise ConfigurationError(f"JOB_INTERVAL_*: {exc}") from exc
    settings = Settings(**values)
    if overrides:
        settings = settings.with_overrides(overrides)
    return settings.check()
