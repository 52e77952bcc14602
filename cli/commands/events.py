"""events send: deliver an event that triggers workflows, or a file of them in batches."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from cli.context import Context, common_options, pass_context
from cli.document import parse_payload, read_ndjson
from cli.errors import EXIT_USER, UserError
from cli.output import emit_json

# Events a request of `send --file` (the API takes at most 500 by default).
BATCH_SIZE = 100
# Rate-limited events are sent again after the API's Retry-After, this many times.
RATE_LIMIT_RETRIES = 5


@click.group()
def events() -> None:
    """Events: the triggers of workflows."""


@events.command(name="send")
@click.argument("event_type", required=False)
@click.option(
    "--file",
    "events_file",
    metavar="FILE",
    help="Send the events of FILE (NDJSON: one event object a line, `-` for stdin)"
    " through POST /events/batch, in batches; a progress bar on a terminal.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 500),
    default=BATCH_SIZE,
    show_default=True,
    help="Events a request with --file.",
)
@click.option("--payload", metavar="JSON|@FILE", help="The event payload (JSON object).")
@click.option("--source", help="Where the event comes from.")
@click.option(
    "--idempotency-key",
    help="Sending the same key again returns the first answer and starts nothing new.",
)
@common_options
@pass_context
def send(  # noqa: PLR0917 - click passes each option as a parameter
    ctx: Context,
    event_type: str | None,
    events_file: str | None,
    batch_size: int,
    payload: str | None,
    source: str | None,
    idempotency_key: str | None,
) -> None:
    """Send an event of type EVENT_TYPE; prints the executions it started.

    With --file, send every event of an NDJSON file instead (each line an object
    like `{"event_type": "order.created", "payload": {...}, "idempotency_key": "..."}`):
    prints a line for each event rejected and a summary; exits 1 if any was.
    """
    if events_file is not None:
        if event_type or payload or source or idempotency_key:
            raise click.UsageError(
                "--file takes the events from the file: give no EVENT_TYPE, --payload,"
                " --source or --idempotency-key"
            )
        send_file(ctx, events_file, batch_size)
        return
    if not event_type:
        raise click.UsageError("give EVENT_TYPE, or --file with events")
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


def send_file(ctx: Context, path: str, batch_size: int) -> None:
    lines = read_ndjson(path)
    if not lines:
        raise UserError(f"{path}: no events in the file")
    results: list[dict[str, Any]] = []
    with click.progressbar(
        length=len(lines), label="sending events", file=sys.stderr, show_pos=True
    ) as bar:
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            results.extend(_send_batch(ctx, chunk))
            bar.update(len(chunk))
    rejected = [result for result in results if result["status"] != 202]
    if ctx.json:
        emit_json(results)
    else:
        for result in rejected:
            error = result["error"]
            details = f" {error['errors']}" if error.get("errors") else ""
            click.echo(
                f"line {result['line']}: rejected ({error['code']}) {error['message']}{details}",
                err=True,
            )
        accepted = len(results) - len(rejected)
        repeated = sum(1 for result in results if result.get("repeated"))
        started = sum(
            len(r["event"]["execution_ids"])
            for r in results
            if r["status"] == 202 and not r.get("repeated")
        )
        click.echo(
            f"{len(results)} events: {accepted} accepted ({repeated} repeated keys),"
            f" {len(rejected)} rejected; {started} executions started"
        )
    if rejected:
        sys.exit(EXIT_USER)


def _send_batch(ctx: Context, chunk: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each event's answer with its line number; rate-limited ones sent again after
    the Retry-After the API gives, a few times."""
    answers: dict[int, dict[str, Any]] = {}
    pending = chunk
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        answer = ctx.client.post("/events/batch", {"events": [body for _, body in pending]})
        limited = []
        for (line, body), result in zip(pending, answer["results"], strict=True):
            answers[line] = {**result, "line": line}
            if result["status"] == 429:
                limited.append((line, body))
        if not limited or attempt == RATE_LIMIT_RETRIES:
            break
        time.sleep(answer.get("retry_after") or 1)
        pending = limited
    return [answers[line] for line, _ in chunk]
