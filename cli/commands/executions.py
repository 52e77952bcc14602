"""executions list|show|trace and logs: what ran, step by step."""

from __future__ import annotations

import time
from typing import Any

import click

from cli.context import Context, common_options, pass_context
from cli.errors import ApiError, UnreachableError, UserError
from cli.output import (
    Column,
    emit_fields,
    emit_json,
    emit_json_line,
    emit_page_footer,
    emit_table,
    timestamp,
)
from cli.output import duration as format_duration

STATUSES = ("pending", "running", "waiting", "paused", "completed", "failed", "cancelled")
FINISHED = frozenset({"completed", "failed", "cancelled"})
# Nothing changes without a person or an outside event: `--follow` stops here too.
PARKED = frozenset({"waiting", "paused"})
# A dropped stream is resumed (Last-Event-ID) this many times before --follow polls.
STREAM_RESUMES = 5
# Refusals a poll would meet too: reported as they are, not worked around.
_CALLER_REFUSED = frozenset({401, 403})

EXECUTION_COLUMNS: list[Column] = [
    ("ID", lambda e: e["id"]),
    ("WORKFLOW", lambda e: e["workflow_id"]),
    ("VERSION", lambda e: e.get("workflow_version")),
    ("STATUS", lambda e: e["status"]),
    ("RESULT", lambda e: e.get("result")),
    ("STEP", lambda e: e.get("current_step_id")),
    ("STARTED", lambda e: timestamp(e.get("started_at") or e.get("created_at"))),
    ("DURATION", lambda e: format_duration(e.get("duration_ms"))),
]
STEP_COLUMNS: list[Column] = [
    ("STEP", lambda s: s["step_id"]),
    ("TYPE", lambda s: s.get("step_type")),
    ("STATUS", lambda s: s["status"]),
    ("ATTEMPT", lambda s: s.get("attempt")),
    ("STARTED", lambda s: timestamp(s.get("started_at"))),
    ("DURATION", lambda s: format_duration(s.get("duration_ms"))),
    ("ERROR", lambda s: s.get("error_message")),
]


@click.group()
def executions() -> None:
    """Executions of workflows: list, show, trace."""


@executions.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only executions in this state.")
@click.option("--workflow", help="Only executions of this workflow_id (slug).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=50, show_default=True)
@common_options
@pass_context
def list_executions(
    ctx: Context, status: str | None, workflow: str | None, page: int, page_size: int
) -> None:
    """List executions, newest first."""
    params = {"status": status, "workflow_id": workflow, "page": page, "page_size": page_size}
    result = ctx.client.get("/executions", params)
    if ctx.json:
        emit_json(result)
        return
    emit_table(result["executions"], EXECUTION_COLUMNS, empty="no executions")
    emit_page_footer(result, len(result["executions"]))


@executions.command(name="show")
@click.argument("execution_id")
@common_options
@pass_context
def show_execution(ctx: Context, execution_id: str) -> None:
    """Show one execution: state, result, error, payload and context."""
    execution = ctx.client.get(f"/executions/{_checked_id(execution_id)}")
    if ctx.json:
        emit_json(execution)
        return
    emit_fields(_execution_fields(execution, detailed=True))


@executions.command(name="trace")
@click.argument("execution_id")
@common_options
@pass_context
def trace_execution(ctx: Context, execution_id: str) -> None:
    """Every step attempt of an execution: status, attempt, duration, error."""
    trace = ctx.client.get(f"/executions/{_checked_id(execution_id)}/trace")
    if ctx.json:
        emit_json(trace)
        return
    emit_fields(_execution_fields(trace["execution"], detailed=False))
    click.echo()
    emit_table(trace["steps"], STEP_COLUMNS, empty="no steps have run yet")


@click.command()
@click.argument("execution_id")
@click.option("--follow", "-f", is_flag=True, help="Keep following until the execution finishes.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between polls, when the live stream cannot be used.",
)
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up (exit 1) after seconds.")
@common_options
@pass_context
def logs(
    ctx: Context, execution_id: str, follow: bool, interval: float, timeout: float | None
) -> None:
    """Print an execution's steps as they run (--follow: until it finishes).

    --follow reads the API's live stream (GET /executions/{id}/events), resuming
    it if the connection drops, and polls the trace only when the stream cannot
    be used (an older server, or too many open streams). With --json, one JSON
    object per line: each step attempt as it appears or changes, then the
    execution. The exit code is 0 whatever the execution's outcome (1 when
    --timeout passes first; while following, checked at each event or heartbeat).
    """
    follow_execution(ctx, _checked_id(execution_id), follow, interval, timeout)


def follow_execution(
    ctx: Context,
    execution_id: str,
    follow: bool,
    interval: float = 1.0,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Print step attempts that are new or changed, then the final execution: from the
    live stream when following, else (or when it cannot be used) from the trace."""
    deadline = None if timeout is None else time.monotonic() + timeout
    printed: dict[str, tuple[Any, ...]] = {}
    if follow:
        finished = _follow_stream(ctx, execution_id, printed, deadline, timeout)
        if finished is not None:
            return finished
    while True:
        trace = ctx.client.get(f"/executions/{execution_id}/trace")
        for step in trace["steps"]:
            _emit_if_new(ctx, printed, step)
        execution = trace["execution"]
        if execution["status"] in FINISHED | PARKED or not follow:
            _emit_end(ctx, execution)
            return dict(execution)
        _check_deadline(execution_id, execution["status"], deadline, timeout)
        time.sleep(interval)


def _follow_stream(
    ctx: Context,
    execution_id: str,
    printed: dict[str, tuple[Any, ...]],
    deadline: float | None,
    timeout: float | None,
) -> dict[str, Any] | None:
    """The execution once it finishes or parks; None when the stream cannot be used."""
    last_event_id: str | None = None
    status = "pending"
    drops = 0  # in a row: a connection that delivered an event starts the count again
    while drops <= STREAM_RESUMES:
        try:
            with ctx.client.stream(f"/executions/{execution_id}/events", last_event_id) as events:
                for event in events:
                    if event.type != "heartbeat":
                        drops = 0
                    if event.type == "step":
                        _emit_if_new(ctx, printed, event.data)
                    elif event.type == "execution":
                        last_event_id, status = event.id or last_event_id, event.data["status"]
                        if status in FINISHED | PARKED:
                            return _emit_final(ctx, execution_id)
                    elif event.type == "end":
                        return _emit_final(ctx, execution_id)
                    _check_deadline(execution_id, status, deadline, timeout)
            # Closed without `end` (the token expired, the server restarted): resume.
        except ApiError as exc:
            if exc.status in _CALLER_REFUSED:
                raise
            click.echo(f"live stream unavailable ({exc.api_message}): polling", err=True)
            return None
        except UnreachableError:
            time.sleep(min(0.2 * 2**drops, 5.0))  # dropped: resume from the last event
        drops += 1
        _check_deadline(execution_id, status, deadline, timeout)
    click.echo("live stream keeps dropping: polling", err=True)
    return None


def _emit_if_new(ctx: Context, printed: dict[str, tuple[Any, ...]], step: dict[str, Any]) -> None:
    state = (step["status"], step.get("attempt"), step.get("completed_at"))
    if printed.get(step["id"]) != state:
        printed[step["id"]] = state
        _emit_step(ctx, step)


def _emit_final(ctx: Context, execution_id: str) -> dict[str, Any]:
    execution = ctx.client.get(f"/executions/{execution_id}")
    _emit_end(ctx, execution)
    return dict(execution)


def _check_deadline(
    execution_id: str, status: str, deadline: float | None, timeout: float | None
) -> None:
    if deadline is not None and timeout is not None and time.monotonic() >= deadline:
        raise UserError(f"execution {execution_id} is still {status} after {timeout:g}s")


def _emit_step(ctx: Context, step: dict[str, Any]) -> None:
    if ctx.json:
        emit_json_line({"type": "step", **step})
        return
    moment = timestamp(step.get("completed_at") or step.get("started_at"))[11:] or "--:--:--"
    line = (
        f"{moment}  {step['step_id']} ({step.get('step_type')}) {step['status']}"
        f", attempt {step.get('attempt')}"
    )
    if step.get("duration_ms") is not None:
        line += f", {format_duration(step['duration_ms'])}"
    if step.get("error_message"):
        line += f": {step['error_message']}"
    click.echo(line)


def _emit_end(ctx: Context, execution: dict[str, Any]) -> None:
    if ctx.json:
        emit_json_line({"type": "execution", **execution})
        return
    status = execution["status"]
    parts = [f"execution {execution['id']} {status}"]
    if execution.get("result"):
        parts.append(f"result {execution['result']}")
    if execution.get("duration_ms") is not None:
        parts.append(f"in {format_duration(execution['duration_ms'])}")
    if execution.get("error_message"):
        parts.append(f"error ({execution.get('error_type')}): {execution['error_message']}")
    if status not in FINISHED:
        parts.append(f"at step {execution.get('current_step_id') or '-'}")
    click.echo(", ".join(parts))


def _execution_fields(execution: dict[str, Any], *, detailed: bool) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("id", execution["id"]),
        ("workflow", f"{execution['workflow_id']} version {execution.get('workflow_version')}"),
        ("status", execution["status"]),
        ("result", execution.get("result")),
        ("current step", execution.get("current_step_id")),
        ("started", timestamp(execution.get("started_at"))),
        ("completed", timestamp(execution.get("completed_at"))),
        ("duration", format_duration(execution.get("duration_ms"))),
    ]
    if execution.get("error_message") or execution.get("error_type"):
        pairs.append(("error", f"{execution.get('error_type')}: {execution.get('error_message')}"))
    if detailed:
        pairs += [
            ("trigger", execution.get("trigger_event") or execution.get("trigger_type")),
            ("payload", execution.get("trigger_payload")),
            ("context", execution.get("context")),
        ]
    return pairs


def _checked_id(value: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UserError(f"{value!r} is not an execution id (a UUID)") from None
