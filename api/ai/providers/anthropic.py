"""Anthropic's Messages API: POST {base}/v1/messages, optionally streamed as SSE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from api.ai.errors import AIUpstreamError
from api.ai.providers.chat import (
    ChatRequest,
    Completion,
    Delta,
    StreamItem,
    Usage,
    split_system,
)
from api.ai.providers.transport import Transport, iter_sse, parse_event_data

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-sonnet-4-5"
API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"


class AnthropicProvider:
    name = "anthropic"
    default_model = DEFAULT_MODEL

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "",
        base_url: str = "",
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
        **transport_options: Any,
    ) -> None:
        self.model = model or DEFAULT_MODEL
        self._transport = Transport(
            self.name,
            base_url or DEFAULT_BASE_URL,
            {
                "x-api-key": api_key,
                "anthropic-version": API_VERSION,
                "content-type": "application/json",
            },
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            **transport_options,
        )

    def close(self) -> None:
        self._transport.close()

    def body(self, request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
        system, messages = split_system(request)
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
        return body

    def complete(self, request: ChatRequest) -> Completion:
        data = self._transport.post_json(MESSAGES_PATH, self.body(request))
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise AIUpstreamError("anthropic answered without a content list")
        text = "".join(
            str(block.get("text", ""))
            for block in blocks
            if isinstance(block, dict) and block.get("type") == "text"
        )
        return Completion(
            content=text,
            model=str(data.get("model") or request.model or self.model),
            usage=_usage(data.get("usage")),
            stop_reason=data.get("stop_reason"),
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamItem]:
        model = request.model or self.model
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        parts: list[str] = []
        body = self.body(request, stream=True)
        with self._transport.open_stream(MESSAGES_PATH, body) as response:
            for event, raw in iter_sse(response):
                if event == "ping":
                    continue
                data = parse_event_data(self.name, raw)
                kind = data.get("type", event)
                if kind == "message_start":
                    message = data.get("message") or {}
                    model = str(message.get("model") or model)
                    input_tokens = _usage(message.get("usage")).input_tokens
                elif kind == "content_block_delta":
                    delta = data.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        parts.append(str(delta["text"]))
                        yield Delta(str(delta["text"]))
                elif kind == "message_delta":
                    output_tokens = _usage(data.get("usage")).output_tokens or output_tokens
                    stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                elif kind == "message_stop":
                    break
                elif kind == "error":
                    error = data.get("error") or {}
                    raise AIUpstreamError(
                        f"anthropic stream failed: {error.get('message', 'unknown error')}",
                        retryable=error.get("type") == "overloaded_error",
                    )
        yield Completion("".join(parts), model, Usage(input_tokens, output_tokens), stop_reason)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0))
