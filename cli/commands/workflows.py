"""validate, deploy, list, show, run: workflow definitions and starting them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import click

from cli.client import ApiClient
from cli.context import Context, common_options, pass_context
from cli.document import load_object, parse_payload
from cli.errors import ApiError, UserError
from cli.output import (
    Column,
    emit_fields,
    emit_json,
    emit_page_footer,
    emit_table,
    timestamp,
)
from engine.errors import DefinitionError
from engine.validation import validate_workflow

NUMERIC_VERSION = re.compile(r"^(v?)(\d+(?:\.\d+)*)$")
PAGE_SIZE = 100

WORKFLOW_COLUMNS: list[Column] = [
    ("ID", lambda w: w["id"]),
    ("WORKFLOW", lambda w: w["workflow_id"]),
    ("VERSION", lambda w: w["version"]),
    ("NAME", lambda w: w["name"]),
    ("ENABLED", lambda w: w["enabled"]),
    ("TRIGGER", lambda w: trigger_summary(w["definition"].get("trigger") or {})),
    ("UPDATED", lambda w: timestamp(w.get("updated_at"))),
]


def trigger_summary(trigger: dict[str, Any]) -> str:
    kind = trigger.get("type", "?")
    detail = trigger.get("event") or trigger.get("cron") or ""
    return f"{kind} {detail}".strip()


@click.command()
@click.argument("file")
@common_options
@pass_context
def validate(ctx: Context, file: str) -> None:
    """Check FILE (JSON; `-` for stdin) offline with the server's validator.

    Exit code 1 and every problem with its JSON path when it is invalid.
    """
    raw = load_object(file)
    try:
        workflow = validate_workflow(raw)
    except DefinitionError as exc:
        errors = exc.as_dict()
        if ctx.json:
            emit_json({"valid": False, "errors": errors})
        else:
            count = len(exc.problems)
            click.echo(f"{file}: invalid workflow ({count} problem{'s' * (count != 1)})")
            for problem in exc.problems:
                click.echo(f"  {problem.path or '<root>'}: {problem.message}")
        raise click.exceptions.Exit(1) from None
    if ctx.json:
        emit_json({"valid": True, "definition": workflow})
        return
    steps = len(workflow["definition"]["steps"])
    click.echo(
        f"{file}: valid — {workflow['workflow_id']} version {workflow['version']}, "
        f"{steps} step{'s' * (steps != 1)}, "
        f"trigger {trigger_summary(workflow['definition']['trigger'])}"
    )


@click.command()
@click.argument("file")
@click.option("--enable", is_flag=True, help="Enable this version (disables the others).")
@click.option(
    "--new-version",
    is_flag=True,
    help="If this version exists, deploy as the next one (1.2.0 -> 1.2.1) instead of failing.",
)
@common_options
@pass_context
def deploy(ctx: Context, file: str, enable: bool, new_version: bool) -> None:
    """Create a workflow version from FILE (JSON; `-` for stdin).

    deploy never replaces a deployed version: when FILE's (workflow_id, version)
    exists the API answers 409 and deploy exits 1 with a hint, unless
    --new-version deploys it as the next version instead.
    """
    body = load_object(file)
    if enable:
        body["enabled"] = True
    try:
        created = ctx.client.post("/workflows", body)
    except ApiError as exc:
        if exc.status != 409:
            raise
        if not new_version:
            raise UserError(
                f"{body.get('workflow_id')} version {body.get('version')} is already deployed",
                hint='bump "version" in the file, or pass --new-version',
            ) from None
        body["version"] = next_version(
            [w["version"] for w in workflow_versions(ctx.client, str(body.get("workflow_id")))]
        )
        created = ctx.client.post("/workflows", body)
    if ctx.json:
        emit_json(created)
        return
    state = (
        "enabled"
        if created["enabled"]
        else f"disabled (enable it: iwctl enable {created['workflow_id']} "
        f"--version {created['version']})"
    )
    click.echo(
        f"deployed {created['workflow_id']} version {created['version']} "
        f"(id {created['id']}), {state}"
    )


@click.command(name="list")
@click.option("--search", help="Substring of the name or workflow_id.")
@click.option("--all-versions", is_flag=True, help="Every version, not only the newest.")
@click.option("--enabled/--disabled", default=None, help="Only enabled (or disabled) ones.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=50, show_default=True)
@common_options
@pass_context
def list_workflows(
    ctx: Context,
    *,
    search: str | None,
    all_versions: bool,
    enabled: bool | None,
    page: int,
    page_size: int,
) -> None:
    """List workflows (the newest version of each)."""
    params: dict[str, Any] = {
        "search": search,
        "latest": None if all_versions else "true",
        "enabled": None if enabled is None else str(enabled).lower(),
        "page": page,
        "page_size": page_size,
    }
    result = ctx.client.get("/workflows", params)
    if ctx.json:
        emit_json(result)
        return
    emit_table(result["workflows"], WORKFLOW_COLUMNS, empty="no workflows")
    emit_page_footer(result, len(result["workflows"]))


@click.command()
@click.argument("workflow")
@click.option("--version", "version", help="This version (default: the enabled one, else newest).")
@common_options
@pass_context
def show(ctx: Context, workflow: str, version: str | None) -> None:
    """Show WORKFLOW: a row id, or a workflow_id (slug)."""
    found = resolve_workflow(ctx.client, workflow, version)
    if ctx.json:
        emit_json(found)
        return
    definition = found["definition"]
    emit_fields(
        [
            ("id", found["id"]),
            ("workflow_id", found["workflow_id"]),
            ("version", found["version"]),
            ("name", found["name"]),
            ("description", found.get("description")),
            ("enabled", found["enabled"]),
            ("tags", found.get("tags")),
            ("trigger", trigger_summary(definition.get("trigger") or {})),
            ("timeout", definition.get("timeout")),
            ("created", timestamp(found.get("created_at"))),
            ("updated", timestamp(found.get("updated_at"))),
        ]
    )
    click.echo()
    emit_table(
        definition.get("steps") or [],
        [
            ("STEP", lambda s: s["id"]),
            ("TYPE", lambda s: s["type"]),
            ("NAME", lambda s: s.get("name")),
            ("GOES TO", step_edges),
        ],
        empty="no steps",
    )


@click.command()
@click.argument("workflow")
@click.option("--payload", metavar="JSON|@FILE", help="The trigger payload (JSON object).")
@click.option("--version", "version", help="This version (default: the enabled one).")
@click.option("--follow", is_flag=True, help="Then print its steps until it finishes.")
@common_options
@pass_context
def run(
    ctx: Context, workflow: str, payload: str | None, version: str | None, follow: bool
) -> None:
    """Start WORKFLOW (row id or workflow_id) manually with a payload."""
    data = parse_payload(payload)
    found = resolve_workflow(ctx.client, workflow, version)
    execution = ctx.client.post(f"/workflows/{found['id']}/execute", {"payload": data})
    if follow:
        from cli.commands.executions import follow_execution

        if not ctx.json:
            click.echo(f"started execution {execution['id']}")
        follow_execution(ctx, execution["id"], follow=True)
        return
    if ctx.json:
        emit_json(execution)
        return
    click.echo(
        f"started execution {execution['id']} of {found['workflow_id']} "
        f"version {found['version']}: {execution['status']}"
    )
    click.echo(f"follow it: iwctl logs {execution['id']} --follow")


@click.command()
@click.argument("workflow")
@click.option("--version", "version", help="This version (default: the newest).")
@common_options
@pass_context
def enable(ctx: Context, workflow: str, version: str | None) -> None:
    """Enable a version of WORKFLOW (the others are disabled): events start it."""
    _switch(ctx, workflow, version, "enable")


@click.command()
@click.argument("workflow")
@click.option("--version", "version", help="This version (default: the enabled one).")
@common_options
@pass_context
def disable(ctx: Context, workflow: str, version: str | None) -> None:
    """Disable a version of WORKFLOW: nothing starts it any more."""
    _switch(ctx, workflow, version, "disable")


def _switch(ctx: Context, workflow: str, version: str | None, action: str) -> None:
    if action == "enable" and version is None and not is_row_id(workflow):
        versions = workflow_versions(ctx.client, workflow)
        found = versions[0] if versions else resolve_workflow(ctx.client, workflow, None)
    else:
        found = resolve_workflow(ctx.client, workflow, version)
    changed = ctx.client.post(f"/workflows/{found['id']}/{action}")
    if ctx.json:
        emit_json(changed)
        return
    state = "enabled" if changed["enabled"] else "disabled"
    click.echo(f"{changed['workflow_id']} version {changed['version']} is {state}")


def step_edges(step: Mapping[str, Any]) -> str:
    edges = []
    for key in ("next", "on_true", "on_false", "on_approve", "on_reject", "on_timeout", "on_error"):
        if step.get(key):
            edges.append(step[key] if key == "next" else f"{key}:{step[key]}")
    return " ".join(edges)


def is_row_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def workflow_versions(client: ApiClient, workflow_id: str) -> list[dict[str, Any]]:
    """Every version of `workflow_id`, newest first."""
    versions: list[dict[str, Any]] = []
    page = 1
    while True:
        result = client.get(
            "/workflows", {"workflow_id": workflow_id, "page": page, "page_size": PAGE_SIZE}
        )
        # workflow_id filters loosely on some servers: keep exact matches only.
        versions += [w for w in result["workflows"] if w["workflow_id"] == workflow_id]
        if page * PAGE_SIZE >= result["total"]:
            return versions
        page += 1


def resolve_workflow(client: ApiClient, reference: str, version: str | None) -> dict[str, Any]:
    """A row id as is; a slug to its given version, else its enabled one, else its newest."""
    if is_row_id(reference) and version is None:
        return dict(client.get(f"/workflows/{reference}"))
    versions = workflow_versions(client, reference)
    if not versions:
        raise UserError(f"no workflow {reference!r}", hint="see `iwctl list`")
    if version is not None:
        for found in versions:
            if found["version"] == version:
                return found
        known = ", ".join(w["version"] for w in versions)
        raise UserError(f"{reference} has no version {version!r} (it has: {known})")
    enabled = [w for w in versions if w["enabled"]]
    return (enabled or versions)[0]


def next_version(versions: list[str]) -> str:
    """The highest numeric version with its last number bumped: 1.2.0 -> 1.2.1, v3 -> v4."""
    numeric = [m for m in (NUMERIC_VERSION.match(v) for v in versions) if m]
    if not numeric:
        raise UserError(
            "cannot compute a next version from " + (", ".join(versions) or "no versions"),
            hint='set "version" in the file',
        )
    best = max(numeric, key=lambda m: tuple(int(p) for p in m.group(2).split(".")))
    parts = best.group(2).split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return best.group(1) + ".".join(parts)
