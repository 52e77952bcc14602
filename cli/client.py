"""The API over HTTP: credentials, one token refresh on 401, errors as CliErrors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cli.config import StoredSession
from cli.errors import ApiError, UnreachableError, api_error
from cli.sse import ServerEvent, parse

API_PREFIX = "/api/v1"
# A stream's server sends a heartbeat every 15 s by default: silence for this
# long means the connection is gone.
STREAM_READ_TIMEOUT = 45.0
LOGIN_HINT = "run `iwctl login` (or set IWCTL_API_KEY)"


def normalise_api_url(url: str) -> str:
    """The server root: `http://host:8080`, whether or not `/api/v1` was given."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url.removesuffix(API_PREFIX).rstrip("/")


class ApiClient:
    """Calls `{api_url}/api/v1`. Auth: X-API-Key if given, else the stored Bearer token.

    A 401 with a stored refresh token triggers one refresh (rotated tokens are
    saved through `on_tokens`) and one retry.
    """

    def __init__(
        self,
        api_url: str,
        *,
        api_key: str | None = None,
        session: StoredSession | None = None,
        on_tokens: Callable[[StoredSession], object] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = normalise_api_url(api_url)
        self.api_key = api_key
        # Tokens are sent only to the server that issued them.
        same_server = session is not None and normalise_api_url(session.api_url) == self.api_url
        self.session = session if same_server else None
        self._on_tokens = on_tokens
        self._http = httpx.Client(base_url=self.api_url + API_PREFIX, timeout=timeout)

    @classmethod
    def from_environment(
        cls,
        api_url: str,
        session: StoredSession,
        on_tokens: Callable[[StoredSession], object] | None = None,
    ) -> ApiClient:
        return cls(
            api_url,
            api_key=os.environ.get("IWCTL_API_KEY") or None,
            session=session,
            on_tokens=on_tokens,
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, **options: Any) -> Any:
        return self.request("POST", path, json=json, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._send(
            method, path, json=json, params=clean, headers=headers, authenticated=authenticated
        )
        if response.status_code == 401 and authenticated and self._can_refresh():
            self._refresh()
            response = self._send(
                method, path, json=json, params=clean, headers=headers, authenticated=authenticated
            )
        return self._result(response)

    @contextmanager
    def stream(
        self, path: str, last_event_id: str | None = None
    ) -> Iterator[Iterator[ServerEvent]]:
        """The events of a text/event-stream endpoint. Follows the API's 307 to its stream
        service (credentials go along only to the API's own host name) and refreshes
        the session once on a 401, like request()."""
        url = self.api_url + API_PREFIX + path
        refreshed = False
        for _ in range(4):
            headers = {"Accept": "text/event-stream", **self._credentials()}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            response = self._open(url, headers)
            if response.status_code in {307, 308} and "location" in response.headers:
                response.close()
                url = self._stream_location(url, response.headers["location"])
                continue
            if response.status_code == 401 and self._can_refresh() and not refreshed:
                response.close()
                self._refresh()
                refreshed = True
                continue
            if not response.is_success:
                response.read()
                response.close()
                raise self._error(response)
            try:
                yield parse(_lines(response, self.api_url))
            finally:
                response.close()
            return
        raise UnreachableError(f"too many redirects opening the stream at {url}")

    def _open(self, url: str, headers: Mapping[str, str]) -> httpx.Response:
        timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
        try:
            return self._http.send(
                self._http.build_request("GET", url, headers=headers, timeout=timeout),
                stream=True,
            )
        except httpx.TimeoutException as exc:
            raise UnreachableError(f"the API at {self.api_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UnreachableError(f"cannot reach API at {self.api_url}: {_reason(exc)}") from exc

    def _stream_location(self, url: str, location: str) -> str:
        target = urljoin(url, location)
        if urlsplit(target).hostname != urlsplit(self.api_url).hostname:
            raise UnreachableError(
                f"the API sent the stream to another host ({target}); credentials are not"
                " sent there"
            )
        return target

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, Any],
        headers: Mapping[str, str] | None,
        authenticated: bool,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if authenticated:
            sent.update(self._credentials())
        try:
            return self._http.request(method, path, json=json, params=params, headers=sent)
        except httpx.TimeoutException as exc:
            raise UnreachableError(f"the API at {self.api_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UnreachableError(f"cannot reach API at {self.api_url}: {_reason(exc)}") from exc

    def _credentials(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.session and self.session.access_token:
            return {"Authorization": f"Bearer {self.session.access_token}"}
        return {}

    def _can_refresh(self) -> bool:
        return not self.api_key and bool(self.session and self.session.refresh_token)

    def _refresh(self) -> None:
        assert self.session is not None
        response = self._send(
            "POST",
            "/auth/refresh",
            json={"refresh_token": self.session.refresh_token},
            params={},
            headers=None,
            authenticated=False,
        )
        if response.status_code != 200:
            raise api_error(
                401,
                "your session has expired or was revoked",
                hint=f"run `iwctl login --api-url {self.api_url}`",
            )
        tokens = response.json()
        self.session.access_token = tokens["access_token"]
        self.session.refresh_token = tokens["refresh_token"]
        if self._on_tokens:
            self._on_tokens(self.session)

    def _result(self, response: httpx.Response) -> Any:
        if response.is_success:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise UnreachableError(
                    f"{self.api_url} answered something that is not the API (not JSON)"
                ) from exc
        raise self._error(response)

    def _error(self, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "message" in body:
            message, errors = str(body["message"]), body.get("errors")
        else:
            message, errors = f"{response.reason_phrase or 'error'} from {self.api_url}", None
        hint = None
        if response.status_code == 401:
            hint = "IWCTL_API_KEY was refused: check or unset it" if self.api_key else LOGIN_HINT
        elif response.status_code == 429 and response.headers.get("Retry-After"):
            hint = f"try again in {response.headers['Retry-After']}s"
        return api_error(response.status_code, message, errors, hint)


def _lines(response: httpx.Response, api_url: str) -> Iterator[str]:
    """The stream's lines; a dropped connection or a silent server as UnreachableError."""
    try:
        yield from response.iter_lines()
    except httpx.TimeoutException as exc:
        raise UnreachableError(f"the stream from {api_url} went silent") from exc
    except httpx.HTTPError as exc:
        raise UnreachableError(f"the stream from {api_url} dropped: {_reason(exc)}") from exc


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text
