"""Chat model providers over their HTTP APIs, and the one that settings select."""

from __future__ import annotations

from typing import Any

from api.ai.providers.anthropic import AnthropicProvider
from api.ai.providers.chat import ChatProvider
from api.ai.providers.openai import OpenAIProvider
from models.config import Settings

PROVIDERS: dict[str, type[AnthropicProvider] | type[OpenAIProvider]] = {
    "anthropic": AnthropicProvider,
    "openai": OpenAIProvider,
}


def is_configured(settings: Settings) -> bool:
    return settings.ai_provider in PROVIDERS and bool(settings.ai_api_key)


def configured_model(settings: Settings) -> str | None:
    """The model requests use by default, or None when AI is disabled."""
    if not is_configured(settings):
        return None
    return settings.ai_model or PROVIDERS[settings.ai_provider].default_model


def build_provider(settings: Settings, **transport_options: Any) -> ChatProvider | None:
    """The provider the settings describe, or None when AI is not configured."""
    if not is_configured(settings):
        return None
    provider: ChatProvider = PROVIDERS[settings.ai_provider](
        settings.ai_api_key,
        model=settings.ai_model,
        base_url=settings.ai_base_url,
        timeout_seconds=settings.ai_timeout_seconds,
        max_retries=settings.ai_max_retries,
        **transport_options,
    )
    return provider
