"""OpenAI's Chat Completions API: POST {base}/v1/chat/completions, optionally streamed."""

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

DEFAULT_BASE_URL = "https://api.openai.com"
DEFAULT_MODEL = "gpt-4o-mini"
COMPLETIONS_PATH = "/v1/chat/completions"


class OpenAIProvider:
    name = "openai"
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
            {"authorization": f"Bearer {api_key}", "content-type": "application/json"},
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            **transport_options,
        )

    def close(self) -> None:
        self._transport.close()

    def body(self, request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
        system, messages = split_system(request)
        wire = [{"role": m.role, "content": m.content} for m in messages]
        if system:
            wire.insert(0, {"role": "system", "content": system})
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": wire,
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            # Without this the stream carries no token counts.
            body["stream_options"] = {"include_usage": True}
        return body

    def complete(self, request: ChatRequest) -> Completion:
        data = self._transport.post_json(COMPLETIONS_PATH, self.body(request))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise AIUpstreamError("openai answered without choices")
        message = choices[0].get("message") or {}
        return Completion(
            content=str(message.get("content") or ""),
            model=str(data.get("model") or request.model or self.model),
            usage=_usage(data.get("usage")),
            stop_reason=choices[0].get("finish_reason"),
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamItem]:
        model = request.model or self.model
        usage = Usage()
        stop_reason: str | None = None
        parts: list[str] = []
        body = self.body(request, stream=True)
        with self._transport.open_stream(COMPLETIONS_PATH, body) as response:
            for _event, raw in iter_sse(response):
                if raw.strip() == "[DONE]":
                    break
                data = parse_event_data(self.name, raw)
                if isinstance(data.get("error"), dict):
                    raise AIUpstreamError(
                        f"openai stream failed: {data['error'].get('message', 'unknown error')}"
                    )
                model = str(data.get("model") or model)
                if data.get("usage"):
                    usage = _usage(data["usage"])
                for choice in data.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        parts.append(str(text))
                        yield Delta(str(text))
                    stop_reason = choice.get("finish_reason") or stop_reason
        yield Completion("".join(parts), model, usage, stop_reason)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
