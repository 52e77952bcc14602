"""The engine's error tree.

Every error the engine raises is an :class:`EngineError`. The shell (API, tasks)
translates them once at its boundary: ``DefinitionError`` becomes a 422,
``StepError`` drives retries and ``on_error`` routing. Whether a step failure is
worth retrying is data on the error (``StepError.retryable``), not something
callers infer from messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Failures that may go away on their own. Everything else is deterministic:
# retrying a template error or an SSRF refusal repeats the same failure.
TRANSIENT_CODES = frozenset({"timeout", "http_5xx", "connection"})
# 4xx answers that mean "try again later" rather than "your request is wrong".
TRANSIENT_STATUS_CODES = frozenset({408, 425, 429})

ERROR_CODES = frozenset(
    {
        "timeout",
        "http_4xx",
        "http_5xx",
        "connection",
        "template",
        "type",
        "ssrf",
        "validation",
        "not_found",
    }
)


class EngineError(Exception):
    """Base class of every error raised by ``engine``."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow definition, at its JSON path."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class DefinitionError(EngineError):
    """A workflow definition is invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        summary = "; ".join(f"{p.path or '<root>'}: {p.message}" for p in self.problems[:5])
        more = len(self.problems) - 5
        if more > 0:
            summary += f"; and {more} more"
        super().__init__(f"invalid workflow definition: {summary}")

    def as_dict(self) -> dict[str, list[str]]:
        """Problems grouped by path, in the order they were found."""
        grouped: dict[str, list[str]] = {}
        for problem in self.problems:
            grouped.setdefault(problem.path, []).append(problem.message)
        return grouped


class TemplateError(EngineError):
    """A template failed to compile or to render."""

    def __init__(self, message: str, template: str | None = None) -> None:
        self.template = template
        super().__init__(message)


class UnknownRuleError(EngineError):
    """A condition references a rule the rule store does not know."""

    def __init__(self, rule_id: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"unknown rule {rule_id!r}")


class StepError(EngineError):
    """A step (or one of its execute items) failed.

    ``code`` classifies the failure (``timeout``, ``http_4xx``, ``http_5xx``,
    ``connection``, ``template``, ``type``, ``ssrf``, ``validation``,
    ``not_found`` or an item-specific code). ``retryable`` defaults from the code
    and can be forced either way by whoever raises the error.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int | None = None,
        details: Mapping[str, Any] | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status_code = status_code
        self.details: dict[str, Any] = dict(details or {})
        self._retryable = retryable
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        if self._retryable is not None:
            return self._retryable
        if self.code == "http_4xx":
            return self.status_code in TRANSIENT_STATUS_CODES
        return self.code in TRANSIENT_CODES

    @property
    def error_class(self) -> str:
        """The ``retry_on`` class this error belongs to (``5xx``, ``4xx``, ...)."""
        return {"http_5xx": "5xx", "http_4xx": "4xx"}.get(self.code, self.code)

    def with_details(self, **details: Any) -> StepError:
        """A copy of this error with more details (e.g. which item failed)."""
        copy = StepError(
            self.code,
            self.message,
            status_code=self.status_code,
            details={**self.details, **details},
            retryable=self._retryable,
        )
        copy.__cause__ = self.__cause__
        return copy

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "status_code": self.status_code,
            "retryable": self.retryable,
            "details": dict(self.details),
        }

    def __repr__(self) -> str:
        return f"StepError(code={self.code!r}, message={self.message!r})"
