"""AI endpoints against local servers that speak each provider's wire format.

One app per provider (session-scoped, real Postgres and Redis), built from
settings that point AI_BASE_URL at the local server; the provider is built by
the same factory as in production, with a short backoff so retries are quick.
No test reaches the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.integration.ai.wire import ProviderServer
from tests.support import Caller, register

API = "/api/v1"
ANTHROPIC_KEY = "sk-ant-test-key"
OPENAI_KEY = "sk-openai-test-key"
BACKOFF_SECONDS = 0.01


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openai_server() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def anthropic(anthropic_server: ProviderServer) -> ProviderServer:
    anthropic_server.reset()
    return anthropic_server


@pytest.fixture
def openai(openai_server: ProviderServer) -> ProviderServer:
    openai_server.reset()
    return openai_server


def make_ai_app(base_settings: dict[str, Any], **ai: Any) -> Any:
    from api.ai.providers import build_provider
    from api.ai.service import install_provider
    from api.app import create_app

    application = create_app({**base_settings, **ai})
    provider = build_provider(
        application.extensions["iw"].settings, backoff_seconds=BACKOFF_SECONDS
    )
    if provider is not None:
        install_provider(application, provider)
    return application


def dispose(application: Any) -> None:
    provider = application.extensions.get("iw-ai-provider")
    if provider is not None:
        provider.close()
    application.extensions["iw"].dispose()


@pytest.fixture(scope="session")
def anthropic_app(base_settings: dict[str, Any], anthropic_server: ProviderServer) -> Iterator[Any]:
    application = make_ai_app(
        base_settings,
        ai_provider="anthropic",
        ai_api_key=ANTHROPIC_KEY,
        ai_model="claude-test",
        ai_base_url=anthropic_server.url,
        ai_timeout_seconds=5.0,
        ai_max_retries=2,
    )
    yield application
    dispose(application)


@pytest.fixture(scope="session")
def openai_app(base_settings: dict[str, Any], openai_server: ProviderServer) -> Iterator[Any]:
    application = make_ai_app(
        base_settings,
        ai_provider="openai",
        ai_api_key=OPENAI_KEY,
        ai_model="gpt-test",
        ai_base_url=openai_server.url + "/",
        ai_timeout_seconds=5.0,
        ai_max_retries=2,
    )
    yield application
    dispose(application)


@pytest.fixture
def claude_user(anthropic_app: Any) -> Caller:
    return register(anthropic_app.test_client())


@pytest.fixture
def gpt_user(openai_app: Any) -> Caller:
    return register(openai_app.test_client())


def chat_body(text: str = "Hello?", **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def audit_entries(application: Any, caller: Caller, action: str) -> list[dict[str, Any]]:
    from models.business import AuditLog

    with application.extensions["iw"].session_factory() as session:
        rows = session.scalars(
            select(AuditLog)
            .where(AuditLog.action == action, AuditLog.organization_id == caller.organization_id)
            .order_by(AuditLog.created_at)
        ).all()
        return [
            {
                "resource_type": row.resource_type,
                "changes": dict(row.changes),
                "actor": row.actor_user_id,
            }
            for row in rows
        ]
