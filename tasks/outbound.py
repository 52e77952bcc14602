"""Outbound HTTP for workflows: SSRF-guarded, time-bounded, size-capped.

Foreign errors are translated here into StepError with the engine's codes
(`timeout`, `connection`, `http_4xx`, `http_5xx`, `ssrf`), so retry policies
apply to them. Redirects are not followed: each hop would need the guard.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from engine.errors import StepError
from engine.port import HttpRequest, HttpResponse
from tasks.ssrf import IPNetwork, check_destination

USER_AGENT = "intelligent-workflows/1"
ERROR_BODY_PREVIEW = 500


class OutboundHttp:
    def __init__(
        self, allow: tuple[IPNetwork, ...], max_response_bytes: int, default_timeout: float
    ) -> None:
        self._allow = allow
        self._max_bytes = max_response_bytes
        self._default_timeout = default_timeout
        self._client = httpx.Client(follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def send(self, request: HttpRequest, *, deadline_seconds: float | None = None) -> HttpResponse:
        """Send `request`; non-2xx answers raise StepError (with the answer in `details`)."""
        response = self.exchange(request, deadline_seconds=deadline_seconds)
        if not response.is_success:
            code = "http_5xx" if response.status_code >= 500 else "http_4xx"
            preview = (
                response.body
                if not isinstance(response.body, str)
                else response.body[:ERROR_BODY_PREVIEW]
            )
            raise StepError(
                code,
                f"{request.method} {request.url} answered {response.status_code}",
                status_code=response.status_code,
                details={"response": {"status_code": response.status_code, "body": preview}},
            )
        return response

    def exchange(
        self, request: HttpRequest, *, deadline_seconds: float | None = None
    ) -> HttpResponse:
        """Send `request` and return whatever answer came back (any status)."""
        url, host_header, sni = self._pinned(request.url)
        timeout = request.timeout_seconds or self._default_timeout
        if deadline_seconds is not None:
            timeout = min(timeout, max(deadline_seconds, 0.001))
        headers = {"User-Agent": USER_AGENT, **dict(request.headers), "Host": host_header}
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        content, content_type = _encode(request.body)
        if content_type and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = content_type
        try:
            with self._client.stream(
                request.method.upper(),
                url,
                headers=headers,
                content=content,
                timeout=httpx.Timeout(timeout),
                extensions={"sni_hostname": sni} if sni else {},
            ) as response:
                raw = self._read_capped(response, request.url)
        except httpx.TimeoutException as exc:
            raise StepError(
                "timeout", f"{request.method} {request.url} timed out after {timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise StepError(
                "connection", f"{request.method} {request.url} failed: {exc!r}"
            ) from exc
        return HttpResponse(
            response.status_code, dict(response.headers), _decode(raw, response.headers)
        )

    def get_json(self, url: str, timeout: float) -> Any:
        response = self.send(HttpRequest("GET", url, timeout_seconds=timeout))
        return response.body

    def _pinned(self, raw_url: str) -> tuple[str, str, str | None]:
        """The URL rewritten to the checked address, the Host header and the TLS server name."""
        parts = urlsplit(raw_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise StepError("validation", f"not an http(s) URL: {raw_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        destination = check_destination(parts.hostname, port, self._allow)
        address = f"[{destination.address}]" if ":" in destination.address else destination.address
        netloc = f"{address}:{parts.port}" if parts.port else address
        host_header = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        sni = parts.hostname if parts.scheme == "https" else None
        return urlunsplit(parts._replace(netloc=netloc)), host_header, sni

    def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise StepError(
                    "response_too_large",
                    f"the answer from {url} is larger than {self._max_bytes} bytes",
                    retryable=False,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _encode(body: Any) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body, default=str).encode(), "application/json"


def _decode(raw: bytes, headers: Mapping[str, str]) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if "json" in headers.get("content-type", "") or text[:1] in {"{", "["}:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
