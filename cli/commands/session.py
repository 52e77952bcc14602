"""login, logout, whoami: who iwctl acts as."""

from __future__ import annotations

import os
from typing import Any

import click

from cli.client import ApiClient
from cli.config import StoredSession, config_path, save_session
from cli.context import Context, common_options, pass_context
from cli.output import emit_fields, emit_json


@click.command()
@click.option("--username", "-u", help="Username or email (prompted when missing).")
@click.option(
    "--password",
    "-p",
    envvar="IWCTL_PASSWORD",
    help="Password (prompted, hidden, when missing) [env: IWCTL_PASSWORD].",
)
@common_options
@pass_context
def login(ctx: Context, username: str | None, password: str | None) -> None:
    """Sign in and keep the session in the config file (mode 0600).

    The file is ~/.config/iwctl/config.json, or IWCTL_CONFIG. With IWCTL_API_KEY
    set, nothing is stored: every command sends that key as X-API-Key.
    """
    if os.environ.get("IWCTL_API_KEY"):
        me = ctx.client.get("/auth/me")
        if ctx.json:
            emit_json(me)
            return
        click.echo(f"using the API key from IWCTL_API_KEY at {ctx.api_url}; nothing stored")
        _describe(me)
        return
    username = username or click.prompt("Username")
    password = password or click.prompt("Password", hide_input=True)
    client = ctx.client
    tokens = client.post(
        "/auth/login", {"username": username, "password": password}, authenticated=False
    )
    session = StoredSession(
        api_url=ctx.api_url,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        username=str(username),
    )
    path = save_session(session)
    signed_in = ApiClient(ctx.api_url, session=session, on_tokens=save_session)
    try:
        me = signed_in.get("/auth/me")
    finally:
        signed_in.close()
    if ctx.json:
        emit_json(me)
        return
    click.echo(f"logged in to {ctx.api_url}; session saved in {path}")
    _describe(me)


@click.command()
@common_options
@pass_context
def logout(ctx: Context) -> None:
    """End the stored session (revoked on the server) and forget its tokens."""
    session = ctx.session
    if session.refresh_token and ctx.client.session is not None:
        ctx.client.post("/auth/logout", {"refresh_token": session.refresh_token})
    save_session(StoredSession(api_url=session.api_url))
    click.echo(f"logged out; {config_path()} holds no tokens")


@click.command()
@common_options
@pass_context
def whoami(ctx: Context) -> None:
    """Who the API sees: user, organization, role and permissions."""
    me = ctx.client.get("/auth/me")
    if ctx.json:
        emit_json(me)
        return
    _describe(me)
    click.echo(f"permissions: {', '.join(sorted(me.get('permissions') or []))}")


def _describe(me: dict[str, Any]) -> None:
    emit_fields(
        [
            ("user", f"{me.get('username')} <{me.get('email')}>"),
            ("organization", me.get("organization_id")),
            ("role", me.get("role")),
        ]
    )
