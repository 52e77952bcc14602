"""events send: deliver an event that triggers workflows."""

from __future__ import annotations

import click

from cli.context import Context, common_options, pass_context
from cli.document import parse_payload
from cli.output import emit_json


@click.group()
def events() -> None:
    """Events: the triggers of workflows."""


@events.command(name="send")
@click.argument("event_type")
@click.option("--payload", metavar="JSON|@FILE", help="The event payload (JSON object).")
@click.option("--source", help="Where the event comes from.")
@click.option(
    "--idempotency-key",
    help="Sending the same key again returns the first answer and starts nothing new.",
)
@common_options
@pass_context
def send(
    ctx: Context,
    event_type: str,
    payload: str | None,
    source: str | None,
    idempotency_key: str | None,
) -> None:
    """Send an event of type EVENT_TYPE; prints the executions it started."""
    body = {"event_type": event_type, "payload": parse_payload(payload)}
    if source:
        body["source"] = source
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    accepted = ctx.client.post("/events", body)
    if ctx.json:
        emit_json(accepted)
        return
    started = accepted.get("execution_ids") or []
    click.echo(f"event {accepted['id']} accepted ({accepted['event_type']})")
    if not started:
        click.echo("no workflow matched: nothing started")
    for workflow_id, execution_id in zip(
        accepted.get("triggered_workflows") or [], started, strict=False
    ):
        click.echo(f"started execution {execution_id} of {workflow_id}")
