"""HTTP to a provider: retries with backoff on 429/5xx, and provider errors as AIErrors.

Foreign errors (httpx, HTTP statuses) are translated here, once, into the tree of
api.ai.errors. A request is retried when the provider said "later" (429, 408, 5xx,
Anthropic's 529) or could not be connected to; never after a read timeout, because
the model may have done (and billed) the work.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from api.ai.errors import AIError, AIRateLimited, AIUnavailable, AIUpstreamError

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class Transport:
    """POSTs JSON to one provider within a time budget, retrying what may succeed later.

    `timeout_seconds` bounds the whole call, retries and waits included (a stream
    only has to start within it). Retry-After is honoured when it fits the budget;
    otherwise the 429 is passed on with its hint.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout_seconds: float,
        max_retries: int,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep
        self._clock = clock
        self._client = httpx.Client(base_url=self.base_url, headers=headers)

    def close(self) -> None:
        self._client.close()

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(path, body, stream=False)
        try:
            data = response.json()
        except ValueError as exc:
            raise AIUpstreamError(
                f"{self.provider} answered with a body that is not JSON", response.status_code
            ) from exc
        if not isinstance(data, dict):
            raise AIUpstreamError(f"{self.provider} answered with an unexpected JSON body")
        return data

    @contextmanager
    def open_stream(self, path: str, body: dict[str, Any]) -> Iterator[httpx.Response]:
        """An open 2xx streaming response (retried until it opens); closed on exit."""
        response = self._send(path, body, stream=True)
        try:
            yield response
        except httpx.TimeoutException as exc:
            raise AIUnavailable(f"{self.provider} stopped streaming (timed out)") from exc
        except httpx.TransportError as exc:
            raise AIUnavailable(f"{self.provider} stream broke: {exc}") from exc
        finally:
            response.close()

    def _send(self, path: str, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        deadline = self._clock() + self.timeout_seconds
        attempt = 0
        while True:
            remaining = deadline - self._clock()
            outcome = self._attempt(path, body, stream=stream, timeout=max(remaining, 0.001))
            if isinstance(outcome, httpx.Response):
                return outcome
            delay = self._retry_delay(outcome, attempt)
            if delay is None or self._clock() + delay >= deadline:
                raise outcome
            self._sleep(delay)
            attempt += 1

    def _attempt(
        self, path: str, body: dict[str, Any], *, stream: bool, timeout: float
    ) -> httpx.Response | AIError:
        request = self._client.build_request(
            "POST", path, json=body, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )
        try:
            response = self._client.send(request, stream=stream)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = AIUnavailable(f"cannot reach {self.provider} at {self.base_url}: {exc}")
            failure.__cause__ = exc
            return failure
        except httpx.TimeoutException as exc:
            raise AIUnavailable(
                f"{self.provider} did not answer within {self.timeout_seconds:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise AIUnavailable(f"{self.provider} request failed: {exc}") from exc
        if response.is_success:
            return response
        if stream:
            response.read()
            response.close()
        return self.error_for(response)

    def _retry_delay(self, error: AIError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with `error`."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        hint = error.retry_after if isinstance(error, AIRateLimited) else None
        if hint is not None:
            return hint
        delay = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
        # Half fixed, half random: spreads the retries of many processes apart.
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not cryptographic

    def error_for(self, response: httpx.Response) -> AIError:
        status = response.status_code
        detail = _error_message(response)
        if status == 429:
            return AIRateLimited(
                f"{self.provider} is rate limiting requests (HTTP 429): {detail}",
                retry_after=retry_after_seconds(response.headers),
            )
        return AIUpstreamError(
            f"{self.provider} answered HTTP {status}: {detail}",
            status,
            retryable=status in RETRY_STATUSES,
        )


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _error_message(response: httpx.Response) -> str:
    """The provider's own words: both wire formats carry `{"error": {"message": ...}}`."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:500]
    if isinstance(error, str):
        return error[:500]
    return response.reason_phrase


def iter_sse(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """Server-sent events of a streaming response as (event, data) pairs."""
    event = "message"
    data: list[str] = []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


def parse_event_data(provider: str, data: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise AIUpstreamError(f"{provider} streamed a frame that is not JSON") from exc
    if not isinstance(parsed, dict):
        raise AIUpstreamError(f"{provider} streamed an unexpected frame")
    return parsed
