"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from api.outage import RETRY_AFTER_SECONDS
from api.services import services
from models.migration import current_revision, head_revision

blp = Blueprint("health", __name__)


@blp.get("/health")
def health() -> ResponseReturnValue:
    """The process is up."""
    return jsonify(status="ok")


@blp.get("/ready")
def ready() -> ResponseReturnValue:
    """Postgres and Redis reachable and the schema at the newest migration; 503 otherwise,
    naming what is not (`message`, and each check with its error in `errors`)."""
    checks: dict[str, Any] = {
        "database": _check_database(),
        "redis": _check_redis(),
    }
    checks["migrations"] = (
        _check_migrations()
        if checks["database"]["ok"]
        else {
            "ok": False,
            "error": "database unreachable",
        }
    )
    ok = all(check["ok"] for check in checks.values())
    if ok:
        return jsonify(status="ready", checks=checks)
    body = {
        "code": 503,
        "status": "Service Unavailable",
        "message": "Not ready: " + ", ".join(name for name, c in checks.items() if not c["ok"]),
        "errors": checks,
    }
    return jsonify(body), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _check_database() -> dict[str, Any]:
    try:
        with services().db_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc).splitlines()[0]}


def _check_redis() -> dict[str, Any]:
    try:
        services().redis.ping()
        return {"ok": True}
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc)}


def _check_migrations() -> dict[str, Any]:
    try:
        current = current_revision(services().db_engine)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc).splitlines()[0]}
    head = head_revision()
    return {"ok": current == head, "current": current, "head": head}
