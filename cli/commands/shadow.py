"""shadow: what a candidate version would have done with the recorded events."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from cli.commands.workflows import resolve_workflow
from cli.context import Context, common_options, pass_context
from cli.document import load_object
from cli.errors import UserError
from cli.output import Column, emit_json, emit_page_footer, emit_table
from engine.duration import parse_duration

FINISHED = frozenset({"completed", "failed"})
DIFFERENCE_COLUMNS: list[Column] = [
    ("EVENT", lambda d: d["event_id"]),
    ("FROM", lambda d: d["from"]),
    ("TO", lambda d: d["to"]),
    ("NEWLY REACHED", lambda d: d["newly_reached"]),
    ("NO LONGER REACHED", lambda d: d["no_longer_reached"]),
    ("UNRESOLVED", lambda d: _unresolved(d.get("unresolved"))),
]


@click.command()
@click.argument("workflow")
@click.option(
    "--file",
    "file",
    required=True,
    metavar="FILE",
    help="The candidate version (a workflow JSON file; `-` for stdin).",
)
@click.option(
    "--since", help="Replay events received since: a duration back from now (7d, 12h) or a time."
)
@click.option("--until", help="... and before: a duration back from now or a time.")
@click.option("--event", "event_ids", multiple=True, metavar="ID", help="Replay this event.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--version", help="Compare with this version (default: the enabled one).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600,
    show_default=True,
    help="Seconds to wait for a report run by a worker.",
)
@common_options
@pass_context
def shadow(
    ctx: Context,
    workflow: str,
    *,
    file: str,
    since: str | None,
    until: str | None,
    event_ids: tuple[str, ...],
    limit: int | None,
    version: str | None,
    page: int,
    page_size: int,
    timeout: float,
) -> None:
    """Replay WORKFLOW's recorded events through the version in FILE, nothing performed.

    Prints how many events the candidate would end the same way, which results
    change (from -> to), the steps newly reached or no longer reached, and each
    event that differs. A long window is run by a worker: shadow waits for it.
    """
    if not (since or event_ids or limit):
        raise click.UsageError("give --since, --event or --limit")
    now = datetime.now(UTC)
    body: dict[str, Any] = {"candidate": load_object(file)}
    if since:
        body["since"] = moment(since, now, "--since")
    if until:
        body["until"] = moment(until, now, "--until")
    if event_ids:
        body["event_ids"] = list(event_ids)
    if limit:
        body["limit"] = limit
    found = resolve_workflow(ctx.client, workflow, version)
    report = ctx.client.post(f"/workflows/{found['id']}/shadow", body)
    report = wait_for(ctx, found["id"], report, (page, page_size), timeout)
    if ctx.json:
        emit_json(report)
        return
    print_report(found, body["candidate"], report)


def moment(text: str, now: datetime, option: str) -> str:
    """A duration back from `now` (`7d`, `12h`) or an ISO time, as an ISO time."""
    try:
        return (now - parse_duration(text)).isoformat()
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is neither a duration (7d, 12h) nor a time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def wait_for(
    ctx: Context, row_id: str, report: dict[str, Any], paging: tuple[int, int], timeout: float
) -> dict[str, Any]:
    """The finished report at this page (the POST answers page 1 of 20)."""
    page, page_size = paging
    path = f"/workflows/{row_id}/shadow/{report['id']}"
    deadline = time.monotonic() + timeout
    while report["status"] not in FINISHED or (report["page"], report["page_size"]) != paging:
        if time.monotonic() > deadline:
            raise UserError(
                f"shadow report {report['id']} still {report['status']} after {timeout:.0f}s",
                hint=f"read it later: GET /api/v1{path}",
            )
        if report["status"] not in FINISHED:
            time.sleep(1.0)
        report = ctx.client.get(path, {"page": page, "page_size": page_size})
    if report["status"] == "failed":
        raise UserError(f"shadow report {report['id']} failed: {report.get('error_message')}")
    return report


def print_report(
    workflow: dict[str, Any], candidate: dict[str, Any], report: dict[str, Any]
) -> None:
    summary = report["summary"]
    click.echo(
        f"shadow run {report['id']}: {workflow['workflow_id']} {workflow['version']} (recorded) "
        f"vs candidate {candidate.get('version', '?')}"
    )
    click.echo("")
    counts = [
        {"what": "events replayed", "n": summary["events_replayed"]},
        {"what": "same result", "n": summary["same_result"]},
        {"what": "different result", "n": summary["different_result"]},
        {"what": "events that differ", "n": summary["differences"]},
        {"what": "unresolved", "n": summary["unresolved"]},
    ]
    emit_table(counts, [("SUMMARY", lambda r: r["what"]), ("EVENTS", lambda r: r["n"])])
    if summary["by_change"]:
        click.echo("")
        emit_table(
            summary["by_change"],
            [("RESULT CHANGE", lambda r: r["change"]), ("EVENTS", lambda r: r["count"])],
        )
    steps = step_rows(summary)
    if steps:
        click.echo("")
        emit_table(
            steps,
            [
                ("STEP", lambda r: r["step_id"]),
                ("NEWLY REACHED", lambda r: r["newly"]),
                ("NO LONGER REACHED", lambda r: r["no_longer"]),
            ],
        )
    if report["differences"]:
        click.echo("")
        emit_table(report["differences"], DIFFERENCE_COLUMNS)
        emit_page_footer(report, len(report["differences"]))


def step_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for key, column in (("steps_newly_reached", "newly"), ("steps_no_longer_reached", "no_longer")):
        for entry in summary[key]:
            row = rows.setdefault(
                entry["step_id"], {"step_id": entry["step_id"], "newly": 0, "no_longer": 0}
            )
            row[column] = entry["count"]
    return list(rows.values())


def _unresolved(unresolved: dict[str, Any] | None) -> str:
    if not unresolved:
        return ""
    return f"{unresolved['kind']} at {unresolved['step_id']}"
