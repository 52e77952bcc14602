"""The AI use cases behind the views: pick the provider, call it, measure, audit.

Audit entries carry the model, token counts and outcome, never prompts or answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, current_app, stream_with_context

from api.ai.errors import AIError, AIRateLimited, AIUnavailable, AIUpstreamError
from api.ai.interpretation import InterpretRequest, interpret
from api.ai.providers import build_provider, configured_model, is_configured
from api.ai.providers.chat import (
    ChatProvider,
    ChatRequest,
    Completion,
    Delta,
    StreamItem,
    Usage,
)
from api.audit import record_audit
from api.services import services, settings

_PROVIDER = "iw-ai-provider"
FEATURES = ("chat", "chat_stream", "interpret")
NOT_CONFIGURED = "AI is not configured: set AI_PROVIDER (anthropic or openai) and AI_API_KEY"
# Callers choose the model, so its label is capped like any user-supplied label.
MAX_MODEL_LABELS = 20
OTHER = "other"
SUCCESS = "success"
CANCELLED = "cancelled"  # the client went away mid-stream


def capabilities() -> dict[str, Any]:
    current = settings()
    if not is_configured(current):
        return {
            "enabled": False,
            "provider": current.ai_provider or None,
            "model": None,
            "features": [],
            "message": NOT_CONFIGURED,
        }
    return {
        "enabled": True,
        "provider": current.ai_provider,
        "model": configured_model(current),
        "features": list(FEATURES),
        "message": None,
    }


def install_provider(app: Flask, provider: ChatProvider) -> None:
    """Use `provider` for this app's AI calls (tests tune retries and backoff this way)."""
    app.extensions[_PROVIDER] = provider


def provider() -> ChatProvider:
    """The app's provider, measured: every model call is counted and timed."""
    found: ChatProvider | None = current_app.extensions.get(_PROVIDER)
    if found is None:
        found = build_provider(settings())
        if found is None:
            _count_unconfigured()
            raise AIUnavailable(NOT_CONFIGURED)
        current_app.extensions[_PROVIDER] = found
    return MeasuredProvider(found)


def chat(request: ChatRequest) -> dict[str, Any]:
    chosen = provider()
    with _Audit("ai_chat", request.model or chosen.model, stream=False) as audit:
        completion = chosen.complete(request)
        audit.succeed(completion.model, completion.usage)
    return _chat_body(completion)


def stream_chat(request: ChatRequest) -> Response:
    """An SSE response; errors before the first byte are raised (JSON error), later ones framed."""
    chosen = provider()
    audit = _Audit("ai_chat", request.model or chosen.model, stream=True)
    items = chosen.stream(request)
    try:
        first = next(items)
    except AIError as exc:
        audit.fail(status_label(exc), exc.message)
        raise
    # direct_passthrough: nothing may turn the stream into a list (an after_request
    # that measures the body would otherwise buffer the whole answer).
    return Response(
        stream_with_context(_frames(audit, first, items)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        direct_passthrough=True,
    )


def interpret_description(ask: InterpretRequest) -> dict[str, Any]:
    chosen = provider()
    with _Audit("ai_interpret", ask.model or chosen.model, stream=False) as audit:
        result = interpret(chosen, ask)
        audit.succeed(result.model, result.usage, attempts=result.attempts, valid=result.valid)
    return {
        "definition": result.definition,
        "valid": result.valid,
        "errors": result.errors,
        "attempts": result.attempts,
        "model": result.model,
        "usage": result.usage.to_dict(),
    }


def _chat_body(completion: Completion) -> dict[str, Any]:
    return {
        "message": {"role": "assistant", "content": completion.content},
        "model": completion.model,
        "usage": completion.usage.to_dict(),
        "finish_reason": completion.stop_reason,
    }


def _frames(audit: _Audit, first: StreamItem, rest: Iterator[StreamItem]) -> Iterator[bytes]:
    item: StreamItem | None = first
    try:
        while item is not None:
            if isinstance(item, Delta):
                yield _sse({"delta": item.text})
            else:
                audit.succeed(item.model, item.usage)
                done = {k: v for k, v in _chat_body(item).items() if k != "message"}
                yield _sse(done, event="done")
            item = next(rest, None)
    except AIError as exc:
        audit.fail(status_label(exc), exc.message)
        yield _sse({"code": exc.status_code, "message": exc.message}, event="error")
    except GeneratorExit:
        audit.fail(CANCELLED, "the client disconnected")
        raise
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()  # releases the provider's HTTP response


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class MeasuredProvider:
    """A provider whose every call is recorded in ai_requests_total{model,status} and
    ai_request_duration_seconds{model} (an interpret with a repair is two calls)."""

    def __init__(self, inner: ChatProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    def complete(self, request: ChatRequest) -> Completion:
        started = time.perf_counter()
        try:
            completion = self.inner.complete(request)
        except AIError as exc:
            _observe(request.model or self.model, status_label(exc), started)
            raise
        _observe(completion.model, SUCCESS, started)
        return completion

    def stream(self, request: ChatRequest) -> Iterator[StreamItem]:
        started = time.perf_counter()
        items = self.inner.stream(request)
        try:
            for item in items:
                if isinstance(item, Completion):
                    _observe(item.model, SUCCESS, started)
                yield item
        except AIError as exc:
            _observe(request.model or self.model, status_label(exc), started)
            raise
        except GeneratorExit:
            _observe(request.model or self.model, CANCELLED, started)
            close = getattr(items, "close", None)
            if close is not None:
                close()
            raise

    def close(self) -> None:
        self.inner.close()


class _Audit:
    """The audit entry of one AI request (ai_chat / ai_interpret), written once."""

    def __init__(self, action: str, model: str, *, stream: bool) -> None:
        self.action = action
        self.model = model
        self.stream = stream
        self.written = False

    def __enter__(self) -> _Audit:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, _trace: Any) -> None:
        if isinstance(error, AIError):
            self.fail(status_label(error), error.message)
        elif error is not None:
            self.fail("error", type(error).__name__)

    def succeed(self, model: str, usage: Usage, **details: Any) -> None:
        self.model = model or self.model
        self._write(SUCCESS, {**usage.to_dict(), **details})

    def fail(self, status: str, reason: str) -> None:
        self._write(status, {"error": reason[:300]})

    def _write(self, status: str, details: dict[str, Any]) -> None:
        if self.written:
            return
        self.written = True
        changes = {
            "provider": settings().ai_provider,
            "model": self.model,
            "status": status,
            "stream": self.stream,
            **details,
        }
        with services().unit_of_work() as uow:
            record_audit(uow.session, self.action, "ai", None, changes)
            uow.commit()


def status_label(error: AIError) -> str:
    if isinstance(error, AIRateLimited):
        return "rate_limited"
    if isinstance(error, AIUpstreamError):
        return "upstream_error"
    return "unavailable"


def _observe(model: str, status: str, started: float) -> None:
    from monitoring import metrics

    metrics.record_ai_request(_model_label(model), status, time.perf_counter() - started)


def _count_unconfigured() -> None:
    """A request refused (503) because no provider is configured: counted, not timed."""
    from monitoring import metrics
    from monitoring.baseline import AI_DISABLED_MODEL

    metrics.record_ai_request(AI_DISABLED_MODEL, status_label(AIUnavailable("")), None)


_seen_models: set[str] = set()


def _model_label(model: str) -> str:
    if model in _seen_models:
        return model
    if len(_seen_models) >= MAX_MODEL_LABELS:
        return OTHER
    _seen_models.add(model)
    return model
