"""GET /ai/capabilities and POST /ai/chat through the app, with the provider on a local server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.ai.conftest import (
    ANTHROPIC_KEY,
    API,
    OPENAI_KEY,
    audit_entries,
    chat_body,
    make_ai_app,
    sample,
)
from tests.integration.ai.wire import (
    ProviderServer,
    anthropic_error,
    anthropic_message,
    openai_completion,
    openai_error,
)
from tests.support import Caller, add_member, create_api_key, register

pytestmark = pytest.mark.integration


def test_capabilities_say_ai_is_disabled_without_a_provider(client: Any) -> None:
    user = register(client)

    response = user.get(f"{API}/ai/capabilities")

    assert response.status_code == 200
    assert response.json["enabled"] is False
    assert response.json["features"] == []
    assert "AI_PROVIDER" in response.json["message"]


@pytest.mark.parametrize("path", ["/ai/chat", "/ai/interpret"])
def test_without_a_provider_the_ai_endpoints_answer_503(client: Any, path: str) -> None:
    user = register(client)
    body = (
        chat_body() if path == "/ai/chat" else {"description": "Notify finance about large orders"}
    )

    response = user.post(API + path, body)

    assert response.status_code == 503
    assert response.json["code"] == 503
    assert response.json["status"] == "Service Unavailable"
    assert "AI is not configured" in response.json["message"]


def test_a_provider_without_a_key_is_disabled(base_settings: dict[str, Any]) -> None:
    from tests.integration.ai.conftest import dispose

    application = make_ai_app(base_settings, ai_provider="openai", ai_api_key="")
    try:
        user = register(application.test_client())
        capabilities = user.get(f"{API}/ai/capabilities")
        chat = user.post(f"{API}/ai/chat", chat_body())
    finally:
        dispose(application)

    assert capabilities.json["enabled"] is False
    assert capabilities.json["provider"] == "openai"
    assert chat.status_code == 503


@pytest.mark.parametrize("path", ["/ai/capabilities", "/ai/chat", "/ai/interpret"])
def test_the_ai_endpoints_need_authentication(anthropic_app: Any, path: str) -> None:
    client = anthropic_app.test_client()
    response = (
        client.get(API + path)
        if path.endswith("capabilities")
        else client.post(API + path, json={})
    )

    assert response.status_code == 401


def test_capabilities_name_the_provider_model_and_features(claude_user: Caller) -> None:
    response = claude_user.get(f"{API}/ai/capabilities")

    assert response.status_code == 200
    assert response.json == {
        "enabled": True,
        "provider": "anthropic",
        "model": "claude-test",
        "features": ["chat", "chat_stream", "interpret"],
        "message": None,
    }


def test_chat_with_anthropic_relays_messages_and_reports_usage(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(
        anthropic_message("Four.", model="claude-test-20250101", input_tokens=20, output_tokens=2)
    )

    response = claude_user.post(
        f"{API}/ai/chat",
        {
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "2+2?"},
            ],
            "max_tokens": 16,
            "temperature": 0,
        },
    )

    assert response.status_code == 200, response.json
    assert response.json == {
        "message": {"role": "assistant", "content": "Four."},
        "model": "claude-test-20250101",
        "usage": {"input_tokens": 20, "output_tokens": 2, "total_tokens": 22},
        "finish_reason": "end_turn",
    }
    (sent,) = anthropic.requests
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.body == {
        "model": "claude-test",
        "max_tokens": 16,
        "temperature": 0.0,
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": "2+2?"}],
    }


def test_chat_with_openai_relays_messages_and_reports_usage(
    gpt_user: Caller, openai: ProviderServer
) -> None:
    openai.script(openai_completion("Bonjour", prompt_tokens=9, completion_tokens=3))

    response = gpt_user.post(f"{API}/ai/chat", chat_body("Say hello in French", model="gpt-other"))

    assert response.status_code == 200, response.json
    assert response.json["message"] == {"role": "assistant", "content": "Bonjour"}
    assert response.json["usage"] == {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12}
    (sent,) = openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.body["model"] == "gpt-other"
    assert sent.body["max_tokens"] == 1024
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello in French"}]


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (401, "authentication_error", "invalid x-api-key"),
        (400, "invalid_request_error", "messages: roles must alternate"),
    ],
)
def test_a_provider_refusal_is_a_502_with_its_message(
    claude_user: Caller, anthropic: ProviderServer, status: int, kind: str, message: str
) -> None:
    anthropic.script(anthropic_error(status, kind, message))

    response = claude_user.post(f"{API}/ai/chat", chat_body())

    assert response.status_code == 502
    assert response.json == {
        "code": 502,
        "status": "Bad Gateway",
        "message": f"anthropic answered HTTP {status}: {message}",
    }
    assert len(anthropic.requests) == 1


def test_a_provider_rate_limit_is_retried_after_its_retry_after(
    gpt_user: Caller, openai: ProviderServer
) -> None:
    openai.script(
        openai_error(429, "Rate limit reached", "rate_limit_exceeded", retry_after="1"),
        openai_completion("ok"),
    )

    response = gpt_user.post(f"{API}/ai/chat", chat_body())

    assert response.status_code == 200
    assert response.json["message"]["content"] == "ok"
    assert len(openai.requests) == 2


def test_a_provider_rate_limit_that_persists_is_a_429_with_retry_after(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(*[anthropic_error(429, "rate_limit_error", "busy", retry_after="0")] * 3)

    response = claude_user.post(f"{API}/ai/chat", chat_body())

    assert response.status_code == 429
    # At least the provider's hint; the limiter may raise it to its own window's reset.
    assert int(response.headers["Retry-After"]) >= 1
    assert "rate limiting" in response.json["message"]
    assert len(anthropic.requests) == 3


def test_provider_server_errors_are_retried_then_reported_as_502(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_error(500, "api_error", "oops"), anthropic_message("recovered"))
    recovered = claude_user.post(f"{API}/ai/chat", chat_body())
    anthropic.script(*[anthropic_error(503, "api_error", "down")] * 3)
    failed = claude_user.post(f"{API}/ai/chat", chat_body())

    assert recovered.status_code == 200
    assert recovered.json["message"]["content"] == "recovered"
    assert failed.status_code == 502
    assert failed.json["message"] == "anthropic answered HTTP 503: down"
    assert len(anthropic.requests) == 2 + 3


def test_an_unreachable_provider_is_a_503(base_settings: dict[str, Any]) -> None:
    from tests.e2e.stack import free_port
    from tests.integration.ai.conftest import dispose

    application = make_ai_app(
        base_settings,
        ai_provider="anthropic",
        ai_api_key="k",
        ai_base_url=f"http://127.0.0.1:{free_port()}",
        ai_max_retries=0,
    )
    try:
        response = register(application.test_client()).post(f"{API}/ai/chat", chat_body())
    finally:
        dispose(application)

    assert response.status_code == 503
    assert "cannot reach anthropic" in response.json["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages"),
        (chat_body(max_tokens=0), "max_tokens"),
        (chat_body(max_tokens=8193), "max_tokens"),
        (chat_body(temperature=2.5), "temperature"),
        (chat_body(model="bad model name"), "model"),
        ({}, "messages"),
    ],
)
def test_invalid_chat_requests_are_422(
    claude_user: Caller, anthropic: ProviderServer, body: dict[str, Any], field: str
) -> None:
    response = claude_user.post(f"{API}/ai/chat", body)

    assert response.status_code == 422
    assert field in response.json["errors"]
    assert anthropic.requests == []


def test_the_largest_allowed_max_tokens_is_accepted(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_message("ok"))

    response = claude_user.post(f"{API}/ai/chat", chat_body(max_tokens=8192, temperature=2))

    assert response.status_code == 200
    assert anthropic.requests[0].body["max_tokens"] == 8192


def test_chat_needs_the_ai_use_permission(anthropic_app: Any, anthropic: ProviderServer) -> None:
    client = anthropic_app.test_client()
    admin, viewer = register(client), register(client)
    add_member(admin, viewer, "workflow_viewer")
    narrow_key = create_api_key(admin, scopes=["workflow:read"])

    as_viewer = viewer.post(f"{API}/ai/chat", chat_body())
    as_key = narrow_key.post(f"{API}/ai/chat", chat_body())
    capabilities = viewer.get(f"{API}/ai/capabilities")

    assert as_viewer.status_code == 403
    assert as_viewer.json["message"] == "Missing permission: ai:use"
    assert as_key.status_code == 403
    assert capabilities.status_code == 200
    assert anthropic.requests == []


def test_ai_requests_have_their_own_rate_limit_per_caller(
    base_settings: dict[str, Any], anthropic_server: ProviderServer
) -> None:
    from tests.integration.ai.conftest import dispose

    anthropic_server.reset()
    application = make_ai_app(
        base_settings,
        ai_provider="anthropic",
        ai_api_key="k",
        ai_base_url=anthropic_server.url,
        ai_rate_limit="2/minute",
    )
    try:
        client = application.test_client()
        first, second = register(client), register(client)
        anthropic_server.script(*[anthropic_message("ok")] * 3)
        answers = [first.post(f"{API}/ai/chat", chat_body()) for _ in range(2)]
        answers.append(first.post(f"{API}/ai/interpret", {"description": "shared limit with chat"}))
        other = second.post(f"{API}/ai/chat", chat_body())
        capabilities = first.get(f"{API}/ai/capabilities")
    finally:
        dispose(application)
        anthropic_server.reset()

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].json["code"] == 429
    assert other.status_code == 200
    assert capabilities.status_code == 200


def test_chat_is_audited_with_model_and_tokens_but_never_content(
    anthropic_app: Any, claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_message("the secret answer", input_tokens=5, output_tokens=3))

    claude_user.post(f"{API}/ai/chat", chat_body("the secret question"))

    (entry,) = audit_entries(anthropic_app, claude_user, "ai_chat")
    assert entry["resource_type"] == "ai"
    assert str(entry["actor"]) == claude_user.user_id
    changes = entry["changes"]
    assert changes["provider"] == "anthropic"
    assert changes["model"] == "claude-test"
    assert changes["status"] == "success"
    assert (changes["input_tokens"], changes["output_tokens"]) == (5, 3)
    assert "secret" not in str(changes)


def test_failed_chats_are_audited_with_their_outcome(
    anthropic_app: Any, claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_error(401, "authentication_error", "bad key"))

    claude_user.post(f"{API}/ai/chat", chat_body())

    (entry,) = audit_entries(anthropic_app, claude_user, "ai_chat")
    assert entry["changes"]["status"] == "upstream_error"


def test_ai_metrics_count_requests_by_model_and_outcome(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    success = {"model": "claude-test", "status": "success"}
    failure = {"model": "claude-test", "status": "upstream_error"}
    before = (
        sample("ai_requests_total", success),
        sample("ai_requests_total", failure),
        sample("ai_request_duration_seconds_count", {"model": "claude-test"}),
    )
    anthropic.script(anthropic_message("ok"), anthropic_error(400, "invalid_request_error", "no"))

    claude_user.post(f"{API}/ai/chat", chat_body())
    claude_user.post(f"{API}/ai/chat", chat_body())

    after = (
        sample("ai_requests_total", success),
        sample("ai_requests_total", failure),
        sample("ai_request_duration_seconds_count", {"model": "claude-test"}),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 2]


def test_the_ai_endpoints_are_documented(anthropic_app: Any) -> None:
    spec = anthropic_app.test_client().get(f"{API}/openapi.json").json
    chat = spec["paths"][f"{API}/ai/chat"]["post"]
    interpret = spec["paths"][f"{API}/ai/interpret"]["post"]
    capabilities = spec["paths"][f"{API}/ai/capabilities"]["get"]

    for operation in (chat, interpret):
        assert "Requires `ai:use`" in operation["description"]
        assert {"401", "403", "422", "429", "502", "503"} <= set(operation["responses"])
        assert "requestBody" in operation
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert capabilities["summary"]
