"""What every provider speaks: chat requests in, completions (or a stream of deltas) out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    max_tokens: int = 1024
    temperature: float | None = None
    model: str | None = None  # None: the provider's configured model
    system: str | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    usage: Usage
    stop_reason: str | None = None


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text."""

    text: str


# A stream yields Deltas, then exactly one Completion (the whole text and the usage).
StreamItem = Delta | Completion


class ChatProvider(Protocol):
    """A chat model behind an HTTP API. Errors are api.ai.errors.AIError subclasses."""

    name: str
    model: str

    def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> Iterator[StreamItem]: ...

    def close(self) -> None: ...


def split_system(request: ChatRequest) -> tuple[str | None, list[ChatMessage]]:
    """The system prompt (request.system and any system messages, joined) and the rest."""
    system = [request.system] if request.system else []
    system += [m.content for m in request.messages if m.role == "system"]
    rest = [m for m in request.messages if m.role != "system"]
    return ("\n\n".join(system) or None), rest
