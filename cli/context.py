"""What every command shares: the API URL, the output mode and a lazily built client.

`--api-url` and `--json` are accepted before the command (`iwctl --json list`)
and after it (`iwctl list --json`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from cli.client import ApiClient, normalise_api_url
from cli.config import DEFAULT_API_URL, StoredSession, load_session, save_session

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    api_url_option: str | None = None
    json: bool = False
    _client: ApiClient | None = field(default=None, repr=False)
    _session: StoredSession | None = field(default=None, repr=False)

    @property
    def session(self) -> StoredSession:
        if self._session is None:
            self._session = load_session()
        return self._session

    @property
    def api_url(self) -> str:
        """--api-url, then IWCTL_API_URL, then the logged-in server, then the default."""
        chosen = (
            self.api_url_option
            or os.environ.get("IWCTL_API_URL")
            or self.session.api_url
            or DEFAULT_API_URL
        )
        return normalise_api_url(chosen)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient.from_environment(self.api_url, self.session, save_session)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


pass_context = click.make_pass_decorator(Context, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Context).json = True


def _set_api_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(Context).api_url_option = value


def common_options(command: F) -> F:
    """`--json` and `--api-url` on a command (they also work on the `iwctl` group)."""
    command = click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the API's JSON (for scripts).",
    )(command)
    return click.option(
        "--api-url",
        metavar="URL",
        expose_value=False,
        callback=_set_api_url,
        help="API root, e.g. http://127.0.0.1:8080 [env: IWCTL_API_URL].",
    )(command)
