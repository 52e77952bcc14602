"""HTTP endpoints of the AI features: capabilities, chat (optionally streamed), interpret."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Response
from flask_smorest import abort as smorest_abort

from api.ai import service
from api.ai.errors import AIError, AIRateLimited
from api.ai.interpretation import InterpretRequest
from api.ai.providers.chat import ChatMessage, ChatRequest
from api.ai.schemas import (
    CapabilitiesSchema,
    ChatBodySchema,
    ChatResponseSchema,
    InterpretBodySchema,
    InterpretResponseSchema,
)
from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import authenticated, requires
from api.errors import abort
from api.ratelimit import limiter
from api.services import settings

F = TypeVar("F", bound=Callable[..., Any])

blp = resource_blueprint("ai", __name__, description="AI: chat with a model, draft workflows")
AI_ERRORS = (*AUTHENTICATED_ERRORS, 422, 502, 503)
STREAM_DOC = {
    "responses": {
        "200": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ChatResponse"}},
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": 'With `stream: true`: `data: {"delta": "..."}` frames, '
                        'then `event: done` (`{"model", "usage", "finish_reason"}`) or '
                        '`event: error` (`{"code", "message"}`)',
                    }
                },
            }
        }
    }
}


def _ai_limit() -> str:
    return settings().ai_rate_limit


def ai_rate_limit(view: F) -> F:
    """The stricter per-principal limit (AI_RATE_LIMIT), shared by chat and interpret."""
    return cast(F, limiter.shared_limit(_ai_limit, scope="ai")(view))


def _translated(call: Callable[[], Any]) -> Any:
    """Run `call`, answering an AIError with its status in the one error shape."""
    try:
        return call()
    except AIRateLimited as exc:
        # The provider's hint is passed on; our own limiter's 429s carry their own.
        retry_after = str(max(1, math.ceil(exc.retry_after or 1)))
        smorest_abort(exc.status_code, message=exc.message, headers={"Retry-After": retry_after})
    except AIError as exc:
        abort(exc.status_code, exc.message)


@blp.route("/ai/capabilities", methods=["GET"])
@authenticated
@blp.response(200, CapabilitiesSchema)
@error_responses(blp, 401, 429)
def capabilities() -> dict[str, Any]:
    """Whether AI is available, with which provider, model and features

    Any authenticated caller. `enabled` is false (with a `message`) when no
    provider or API key is configured; chat and interpret then answer 503.
    """
    return service.capabilities()


@blp.route("/ai/chat", methods=["POST"])
@ai_rate_limit
@requires("ai:use")
@blp.arguments(ChatBodySchema)
@blp.response(200, ChatResponseSchema)
@blp.doc(**STREAM_DOC)
@error_responses(blp, *AI_ERRORS)
def chat(body: dict[str, Any]) -> dict[str, Any] | Response:
    """Send messages to the model and get its answer

    Requires `ai:use`; rate-limited per caller by `AI_RATE_LIMIT` (default
    30/minute, shared with interpret). `stream: true` answers
    `text/event-stream`. 502 when the provider refuses the request, 429 when it
    keeps rate-limiting (with `Retry-After`), 503 when AI is not configured or the
    provider cannot be reached. Audited as `ai_chat` (model and token counts,
    never the content).
    """
    request = ChatRequest(
        messages=[ChatMessage(m["role"], m["content"]) for m in body["messages"]],
        max_tokens=body["max_tokens"],
        temperature=body["temperature"],
        model=body["model"],
    )
    if body["stream"]:
        return cast(Response, _translated(lambda: service.stream_chat(request)))
    return cast(dict[str, Any], _translated(lambda: service.chat(request)))


@blp.route("/ai/interpret", methods=["POST"])
@ai_rate_limit
@requires("ai:use")
@blp.arguments(InterpretBodySchema)
@blp.response(200, InterpretResponseSchema)
@error_responses(blp, *AI_ERRORS)
def interpret(body: dict[str, Any]) -> dict[str, Any]:
    """Turn a description into a workflow definition, validated before it is returned

    Requires `ai:use`; rate-limited like chat. The model's answer is parsed and
    validated by the same validator as `POST /workflows`; if it is invalid the
    problems are sent back to the model once for a repair. `valid` says whether
    the returned `definition` (normalised when valid) can be created as is;
    `errors` lists what is still wrong by JSON path. Nothing is stored. Audited
    as `ai_interpret`.
    """
    ask = InterpretRequest(
        description=body["description"],
        workflow_id=body["workflow_id"],
        name=body["name"],
        model=body["model"],
        max_tokens=body["max_tokens"],
        temperature=0.0 if body["temperature"] is None else body["temperature"],
    )
    return cast(dict[str, Any], _translated(lambda: service.interpret_description(ask)))
