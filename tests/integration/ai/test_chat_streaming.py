"""POST /ai/chat with stream=true: the provider's stream relayed as real SSE frames."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from tests.integration.ai.conftest import API, audit_entries, chat_body
from tests.integration.ai.wire import (
    ProviderServer,
    anthropic_error,
    anthropic_stream,
    openai_stream,
    sse,
)
from tests.support import Caller, bearer, register

pytestmark = pytest.mark.integration


def frames(text: str) -> list[tuple[str, Any]]:
    """(event, data) of each SSE frame; `message` when no event is named."""
    parsed = []
    for block in text.strip().split("\n\n"):
        event, data = "message", []
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        parsed.append((event, json.loads("\n".join(data))))
    return parsed


def test_anthropic_deltas_are_relayed_as_sse_then_done(
    anthropic_app: Any, claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_stream("Hel", "lo", "!", input_tokens=8, output_tokens=3))

    response = claude_user.post(f"{API}/ai/chat", chat_body(stream=True))

    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert frames(response.get_data(as_text=True)) == [
        ("message", {"delta": "Hel"}),
        ("message", {"delta": "lo"}),
        ("message", {"delta": "!"}),
        (
            "done",
            {
                "model": "claude-test",
                "usage": {"input_tokens": 8, "output_tokens": 3, "total_tokens": 11},
                "finish_reason": "end_turn",
            },
        ),
    ]
    assert anthropic.requests[0].body["stream"] is True
    (entry,) = audit_entries(anthropic_app, claude_user, "ai_chat")
    assert entry["changes"]["stream"] is True
    assert entry["changes"]["output_tokens"] == 3


def test_openai_chunks_are_relayed_as_sse_then_done(
    gpt_user: Caller, openai: ProviderServer
) -> None:
    openai.script(openai_stream("Bon", "jour", prompt_tokens=4, completion_tokens=2))

    response = gpt_user.post(f"{API}/ai/chat", chat_body(stream=True))

    parsed = frames(response.get_data(as_text=True))
    assert [data for event, data in parsed if event == "message"] == [
        {"delta": "Bon"},
        {"delta": "jour"},
    ]
    assert parsed[-1][0] == "done"
    assert parsed[-1][1]["usage"] == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}


def test_a_refusal_before_the_stream_starts_is_a_json_error(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_error(401, "authentication_error", "invalid x-api-key"))

    response = claude_user.post(f"{API}/ai/chat", chat_body(stream=True))

    assert response.status_code == 502
    assert response.mimetype == "application/json"
    assert response.json["message"] == "anthropic answered HTTP 401: invalid x-api-key"


def test_a_failure_mid_stream_ends_with_an_error_frame(
    anthropic_app: Any, claude_user: Caller, anthropic: ProviderServer
) -> None:
    broken = anthropic_stream("partial")
    assert broken.frames is not None
    broken.frames[-3:] = [
        sse(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    ]
    anthropic.script(broken)

    response = claude_user.post(f"{API}/ai/chat", chat_body(stream=True))

    assert frames(response.get_data(as_text=True)) == [
        ("message", {"delta": "partial"}),
        ("error", {"code": 502, "message": "anthropic stream failed: Overloaded"}),
    ]
    (entry,) = audit_entries(anthropic_app, claude_user, "ai_chat")
    assert entry["changes"]["status"] == "upstream_error"


@pytest.fixture
def served_app(anthropic_app: Any) -> Iterator[str]:
    """The app behind a real threaded HTTP server, so the response really streams."""
    server = make_server("127.0.0.1", 0, anthropic_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_frames_reach_the_client_as_the_provider_sends_them(
    served_app: str, anthropic_app: Any, anthropic: ProviderServer
) -> None:
    user = register(anthropic_app.test_client())
    release = threading.Event()
    anthropic.script(anthropic_stream("first", release, "second"))
    received: list[str] = []

    with (
        httpx.Client(base_url=served_app, timeout=10) as client,
        client.stream(
            "POST", f"{API}/ai/chat", json=chat_body(stream=True), headers=bearer(user.access_token)
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for line in lines:
            if line:
                received.append(line)
                break
        # The provider is still holding "second": what arrived was streamed, not buffered.
        assert received == ['data: {"delta":"first"}']
        release.set()
        received += [line for line in lines if line]

    assert received[1:] == ['data: {"delta":"second"}', "event: done", received[-1]]
    assert json.loads(received[-1].removeprefix("data: "))["model"] == "claude-test"


def test_a_client_that_goes_away_mid_stream_is_audited_as_cancelled(
    served_app: str, anthropic_app: Any, anthropic: ProviderServer
) -> None:
    import time

    from tests.integration.ai.conftest import sample

    user = register(anthropic_app.test_client())
    release = threading.Event()
    anthropic.script(anthropic_stream("first", release, "second", "third"))
    cancelled = {"model": "claude-test", "status": "cancelled"}
    before = sample("ai_requests_total", cancelled)

    with (
        httpx.Client(base_url=served_app, timeout=10) as client,
        client.stream(
            "POST", f"{API}/ai/chat", json=chat_body(stream=True), headers=bearer(user.access_token)
        ) as response,
    ):
        assert next(line for line in response.iter_lines() if line) == 'data: {"delta":"first"}'
    release.set()  # the server writes the next frame into a closed connection

    deadline = time.monotonic() + 10
    while not audit_entries(anthropic_app, user, "ai_chat") and time.monotonic() < deadline:
        time.sleep(0.05)
    (entry,) = audit_entries(anthropic_app, user, "ai_chat")
    assert entry["changes"]["status"] == "cancelled"
    assert sample("ai_requests_total", cancelled) - before == 1
