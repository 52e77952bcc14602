"""templates list|init: starter workflows to edit, validate and deploy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.context import Context, common_options, pass_context
from cli.errors import UserError
from cli.output import emit_json, emit_table
from cli.starters import STARTERS


@click.group()
def templates() -> None:
    """Starter workflows."""


@templates.command(name="list")
@common_options
@pass_context
def list_templates(ctx: Context) -> None:
    """The starter workflows `templates init` can write."""
    rows = [
        {
            "name": s.name,
            "workflow_id": s.workflow["workflow_id"],
            "trigger": s.workflow["definition"]["trigger"]["type"],
            "summary": s.summary,
        }
        for s in STARTERS.values()
    ]
    if ctx.json:
        emit_json(rows)
        return
    emit_table(
        rows,
        [
            ("NAME", lambda r: r["name"]),
            ("TRIGGER", lambda r: r["trigger"]),
            ("DESCRIPTION", lambda r: r["summary"]),
        ],
    )


@templates.command(name="init")
@click.argument("name", type=click.Choice(sorted(STARTERS)))
@click.option("-o", "--output", "output", metavar="FILE", help="Write here (default: stdout).")
@click.option("--workflow-id", help="Use this workflow_id instead of the template's.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def init(name: str, output: str | None, workflow_id: str | None, force: bool) -> None:
    """Print (or write to FILE) the starter workflow NAME."""
    text = json.dumps(STARTERS[name].render(workflow_id), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    if path.exists() and not force:
        raise UserError(f"{output} exists", hint="pass --force to overwrite it")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {output}; next: iwctl validate {output} && iwctl deploy {output}", err=True)
