"""The provider clients themselves, against local servers speaking each wire format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.ai.errors import AIRateLimited, AIUnavailable, AIUpstreamError
from api.ai.providers.anthropic import AnthropicProvider
from api.ai.providers.chat import ChatMessage, ChatRequest, Completion, Delta
from api.ai.providers.openai import OpenAIProvider
from tests.e2e.stack import free_port
from tests.integration.ai.wire import (
    ProviderServer,
    Reply,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    openai_completion,
    openai_error,
    openai_stream,
)

pytestmark = pytest.mark.integration

REQUEST = ChatRequest(
    messages=[
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "How are you?"),
    ],
    max_tokens=64,
    temperature=0.3,
)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def claude(anthropic: ProviderServer, sleeps: Sleeps) -> Iterator[AnthropicProvider]:
    provider = AnthropicProvider(
        "key-a",
        model="claude-x",
        base_url=anthropic.url,
        timeout_seconds=5,
        max_retries=2,
        sleep=sleeps,
    )
    yield provider
    provider.close()


@pytest.fixture
def gpt(openai: ProviderServer, sleeps: Sleeps) -> Iterator[OpenAIProvider]:
    provider = OpenAIProvider(
        "key-o", model="gpt-x", base_url=openai.url, timeout_seconds=5, max_retries=2, sleep=sleeps
    )
    yield provider
    provider.close()


def test_anthropic_request_and_response_follow_the_messages_api(
    claude: AnthropicProvider, anthropic: ProviderServer
) -> None:
    anthropic.script(
        anthropic_message("Fine, thanks.", model="claude-x-2024", input_tokens=21, output_tokens=4)
    )

    completion = claude.complete(REQUEST)

    (sent,) = anthropic.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "key-a"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-x",
        "max_tokens": 64,
        "system": "Be brief.",
        "temperature": 0.3,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "How are you?"},
        ],
    }
    assert completion.content == "Fine, thanks."
    assert completion.model == "claude-x-2024"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (21, 4)
    assert completion.stop_reason == "end_turn"


def test_openai_request_and_response_follow_chat_completions(
    gpt: OpenAIProvider, openai: ProviderServer
) -> None:
    openai.script(
        openai_completion("Fine.", model="gpt-x-0613", prompt_tokens=30, completion_tokens=2)
    )

    completion = gpt.complete(REQUEST)

    (sent,) = openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer key-o"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "gpt-x",
        "max_tokens": 64,
        "temperature": 0.3,
        "stream": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "How are you?"},
        ],
    }
    assert completion.content == "Fine."
    assert completion.model == "gpt-x-0613"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (30, 2)


def test_a_model_chosen_per_request_is_sent(
    claude: AnthropicProvider, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_message("ok"))

    claude.complete(ChatRequest([ChatMessage("user", "x")], model="claude-other"))

    assert anthropic.requests[0].body["model"] == "claude-other"
    assert "temperature" not in anthropic.requests[0].body


@pytest.mark.parametrize("provider", ["claude", "gpt"])
def test_a_429_is_retried_after_the_retry_after_it_names(
    provider: str, request: pytest.FixtureRequest, sleeps: Sleeps
) -> None:
    client = request.getfixturevalue(provider)
    server: ProviderServer = request.getfixturevalue(
        "anthropic" if provider == "claude" else "openai"
    )
    if provider == "claude":
        server.script(
            anthropic_error(429, "rate_limit_error", "slow down", retry_after="2"),
            anthropic_message("ok"),
        )
    else:
        server.script(
            openai_error(429, "slow down", "rate_limit_exceeded", retry_after="2"),
            openai_completion("ok"),
        )

    completion = client.complete(REQUEST)

    assert completion.content == "ok"
    assert len(server.requests) == 2
    assert sleeps == [2.0]


def test_openai_retry_after_ms_is_honoured(
    gpt: OpenAIProvider, openai: ProviderServer, sleeps: Sleeps
) -> None:
    openai.script(
        openai_error(429, "slow", retry_after_ms="250", retry_after="9"), openai_completion("ok")
    )

    gpt.complete(REQUEST)

    assert sleeps == [0.25]


def test_server_errors_are_retried_with_exponential_backoff(
    claude: AnthropicProvider, anthropic: ProviderServer, sleeps: Sleeps
) -> None:
    anthropic.script(
        anthropic_error(500, "api_error", "boom"),
        anthropic_error(529, "overloaded_error", "overloaded"),
        anthropic_message("finally"),
    )

    assert claude.complete(REQUEST).content == "finally"
    assert len(anthropic.requests) == 3
    first, second = sleeps
    assert 0.25 <= first <= 0.5  # backoff 0.5s: half fixed, half jitter
    assert 0.5 <= second <= 1.0  # doubled


def test_server_errors_that_persist_become_an_upstream_error(
    gpt: OpenAIProvider, openai: ProviderServer
) -> None:
    openai.script(*[openai_error(503, "down for maintenance", "server_error")] * 3)

    with pytest.raises(
        AIUpstreamError, match="openai answered HTTP 503: down for maintenance"
    ) as caught:
        gpt.complete(REQUEST)

    assert len(openai.requests) == 3  # the first attempt and max_retries=2
    assert caught.value.status_code == 502
    assert caught.value.upstream_status == 503


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (401, "authentication_error", "invalid x-api-key"),
        (400, "invalid_request_error", "max_tokens: too large"),
    ],
)
def test_client_errors_are_not_retried(
    claude: AnthropicProvider, anthropic: ProviderServer, status: int, kind: str, message: str
) -> None:
    anthropic.script(anthropic_error(status, kind, message))

    with pytest.raises(AIUpstreamError) as caught:
        claude.complete(REQUEST)

    assert len(anthropic.requests) == 1
    assert caught.value.message == f"anthropic answered HTTP {status}: {message}"
    assert caught.value.retryable is False


def test_a_rate_limit_that_persists_is_reported_with_its_hint(
    claude: AnthropicProvider, anthropic: ProviderServer, sleeps: Sleeps
) -> None:
    anthropic.script(*[anthropic_error(429, "rate_limit_error", "busy", retry_after="1")] * 3)

    with pytest.raises(AIRateLimited) as caught:
        claude.complete(REQUEST)

    assert caught.value.retry_after == 1.0
    assert caught.value.status_code == 429
    assert sleeps == [1.0, 1.0]


def test_a_retry_after_beyond_the_time_budget_is_not_waited_for(
    claude: AnthropicProvider, anthropic: ProviderServer, sleeps: Sleeps
) -> None:
    anthropic.script(
        anthropic_error(429, "rate_limit_error", "come back in a minute", retry_after="60")
    )

    with pytest.raises(AIRateLimited) as caught:
        claude.complete(REQUEST)

    assert caught.value.retry_after == 60.0
    assert sleeps == []
    assert len(anthropic.requests) == 1


def test_an_unreachable_provider_is_unavailable(sleeps: Sleeps) -> None:
    provider = OpenAIProvider(
        "k",
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout_seconds=5,
        max_retries=1,
        sleep=sleeps,
    )
    try:
        with pytest.raises(AIUnavailable, match="cannot reach openai"):
            provider.complete(REQUEST)
    finally:
        provider.close()
    assert len(sleeps) == 1  # connection failures are retried


def test_a_provider_slower_than_the_budget_times_out_without_a_retry(
    anthropic: ProviderServer, sleeps: Sleeps
) -> None:
    anthropic.script(Reply(200, {"content": []}, delay=1.5), anthropic_message("late"))
    provider = AnthropicProvider(
        "k", base_url=anthropic.url, timeout_seconds=0.5, max_retries=2, sleep=sleeps
    )
    try:
        with pytest.raises(AIUnavailable, match=r"did not answer within 0\.5s"):
            provider.complete(REQUEST)
    finally:
        provider.close()
    assert sleeps == []


def test_a_body_that_is_not_the_wire_format_is_an_upstream_error(
    claude: AnthropicProvider, anthropic: ProviderServer
) -> None:
    anthropic.script(Reply(200, {"unexpected": True}))

    with pytest.raises(AIUpstreamError, match="without a content list"):
        claude.complete(REQUEST)


def collect(items: Iterator[Any]) -> tuple[list[str], Completion]:
    collected = list(items)
    *deltas, final = collected
    assert all(isinstance(d, Delta) for d in deltas)
    assert isinstance(final, Completion)
    return [d.text for d in deltas], final


def test_anthropic_streams_its_server_sent_events(
    claude: AnthropicProvider, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_stream("Hel", "lo", " there", input_tokens=12, output_tokens=3))

    texts, final = collect(claude.stream(REQUEST))

    assert anthropic.requests[0].body["stream"] is True
    assert texts == ["Hel", "lo", " there"]
    assert final.content == "Hello there"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 3)
    assert final.stop_reason == "end_turn"


def test_openai_streams_data_chunks_until_done(gpt: OpenAIProvider, openai: ProviderServer) -> None:
    openai.script(openai_stream("Hi", "!", prompt_tokens=7, completion_tokens=2))

    texts, final = collect(gpt.stream(REQUEST))

    body = openai.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert texts == ["Hi", "!"]
    assert final.content == "Hi!"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 2)
    assert final.stop_reason == "stop"


def test_a_stream_is_retried_until_it_opens(
    gpt: OpenAIProvider, openai: ProviderServer, sleeps: Sleeps
) -> None:
    openai.script(openai_error(502, "bad gateway", "server_error"), openai_stream("ok"))

    texts, _final = collect(gpt.stream(REQUEST))

    assert texts == ["ok"]
    assert len(sleeps) == 1


def test_an_error_event_in_a_stream_is_an_upstream_error(
    claude: AnthropicProvider, anthropic: ProviderServer
) -> None:
    from tests.integration.ai.wire import sse

    broken = anthropic_stream("partial")
    assert broken.frames is not None
    broken.frames[-3:] = [
        sse(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    ]
    anthropic.script(broken)

    items = claude.stream(REQUEST)
    assert next(items) == Delta("partial")
    with pytest.raises(AIUpstreamError, match="Overloaded"):
        next(items)
