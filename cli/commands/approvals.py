"""approvals list|show|approve|reject: human decisions that executions wait for."""

from __future__ import annotations

import click

from cli.context import Context, common_options, pass_context
from cli.output import Column, emit_fields, emit_json, emit_page_footer, emit_table, timestamp

STATUSES = ("pending", "approved", "rejected", "expired")
APPROVAL_COLUMNS: list[Column] = [
    ("ID", lambda a: a["id"]),
    ("STATUS", lambda a: a["status"]),
    ("GROUP", lambda a: a.get("approver_role")),
    ("ENTITY", lambda a: f"{a.get('entity_type') or '-'}:{a.get('entity_id') or '-'}"),
    ("REASON", lambda a: a.get("reason")),
    ("REQUESTED", lambda a: timestamp(a.get("requested_at"))),
    ("EXPIRES", lambda a: timestamp(a.get("expires_at"))),
]


@click.group()
def approvals() -> None:
    """Approvals: list them and decide."""


@approvals.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only approvals in this state.")
@click.option("--mine", is_flag=True, help="Only those I may decide.")
@click.option("--role", help="Only this approval group.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=50, show_default=True)
@common_options
@pass_context
def list_approvals(
    ctx: Context,
    *,
    status: str | None,
    mine: bool,
    role: str | None,
    page: int,
    page_size: int,
) -> None:
    """List approvals, newest first."""
    params = {
        "status": status,
        "mine": "true" if mine else None,
        "role": role,
        "page": page,
        "page_size": page_size,
    }
    result = ctx.client.get("/approvals", params)
    if ctx.json:
        emit_json(result)
        return
    emit_table(result["approvals"], APPROVAL_COLUMNS, empty="no approvals")
    emit_page_footer(result, len(result["approvals"]))


@approvals.command(name="show")
@click.argument("approval_id")
@common_options
@pass_context
def show_approval(ctx: Context, approval_id: str) -> None:
    """Show one approval with its data."""
    approval = ctx.client.get(f"/approvals/{approval_id}")
    if ctx.json:
        emit_json(approval)
        return
    emit_fields([(key.replace("_", " "), value) for key, value in approval.items()])


@approvals.command()
@click.argument("approval_id")
@click.option("--reason", help="Why (kept with the decision).")
@common_options
@pass_context
def approve(ctx: Context, approval_id: str, reason: str | None) -> None:
    """Approve APPROVAL_ID: the waiting execution continues."""
    _decide(ctx, approval_id, "approve", reason)


@approvals.command()
@click.argument("approval_id")
@click.option("--reason", required=True, help="Why (required).")
@common_options
@pass_context
def reject(ctx: Context, approval_id: str, reason: str) -> None:
    """Reject APPROVAL_ID (a reason is required)."""
    _decide(ctx, approval_id, "reject", reason)


def _decide(ctx: Context, approval_id: str, decision: str, reason: str | None) -> None:
    body = {"reason": reason} if reason else {}
    approval = ctx.client.post(f"/approvals/{approval_id}/{decision}", body)
    if ctx.json:
        emit_json(approval)
        return
    click.echo(f"approval {approval['id']} {approval['status']}")
