"""The `iwctl` entry point: the command tree and its global options.

Exit codes: 0 success, 1 bad input (file, JSON, definition, or an API answer
about the request: 400/404/409/413/422), 2 usage, 3 API or network failure
(unreachable, timeout, 401/403, 429, 5xx), 4 a check found a problem (a broken
audit chain; `verify`: something lost or repeated). See cli.errors.
"""

from __future__ import annotations

import click

from cli.commands.approvals import approvals
from cli.commands.audit import audit
from cli.commands.events import events
from cli.commands.executions import executions, logs
from cli.commands.session import login, logout, whoami
from cli.commands.shadow import shadow
from cli.commands.templates import templates
from cli.commands.verify import verify
from cli.commands.workflows import (
    deploy,
    disable,
    enable,
    list_workflows,
    run,
    show,
    validate,
)
from cli.context import Context, common_options

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@common_options
@click.version_option(package_name="intelligent-workflows", prog_name="iwctl")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Command-line client of Intelligent Workflows.

    \b
    Configuration:
      --api-url / IWCTL_API_URL   API root (default: the logged-in one, else
                                  http://127.0.0.1:8080)
      IWCTL_API_KEY               send this API key instead of a login session
      IWCTL_CONFIG                session file (default ~/.config/iwctl/config.json)
    \b
    Exit codes: 0 ok, 1 bad input or refused request (400/404/409/422),
    2 usage, 3 API unreachable or failing, or credentials refused (401/403/429/5xx),
    4 a check found a problem (`audit verify`: the audit chain is broken;
    `verify`: an execution lost, refused or repeated).
    """
    context = ctx.ensure_object(Context)
    ctx.call_on_close(context.close)


for command in (
    login,
    logout,
    whoami,
    validate,
    deploy,
    list_workflows,
    show,
    enable,
    disable,
    run,
    logs,
    shadow,
    verify,
):
    cli.add_command(command)
for group in (events, executions, approvals, templates, audit):
    cli.add_command(group)


def main() -> None:
    cli(prog_name="iwctl")
