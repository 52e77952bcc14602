"""The AI error tree. Provider clients raise these; resources map them to HTTP once.

    AIError
    ├── AIUnavailable      503  not configured, unreachable, timed out
    ├── AIRateLimited      429  the provider kept answering 429 (carries retry_after)
    └── AIUpstreamError    502  the provider refused the request or answered nonsense

Whether trying again may help is data on the error (``retryable``), as in engine.errors.
"""

from __future__ import annotations


class AIError(Exception):
    """Base class of every error the AI layer raises."""

    status_code = 502
    retryable = False

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class AIUnavailable(AIError):
    """No provider is configured, or it cannot be reached in time."""

    status_code = 503
    retryable = True


class AIRateLimited(AIError):
    """The provider is throttling us; ``retry_after`` seconds is its hint (if any)."""

    status_code = 429
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AIUpstreamError(AIError):
    """The provider answered with an error (4xx/5xx) or a body we cannot read."""

    status_code = 502

    def __init__(
        self, message: str, upstream_status: int | None = None, *, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.retryable = retryable
