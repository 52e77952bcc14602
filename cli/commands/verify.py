"""verify: prove on a deployment that nothing is lost or repeated, even when workers die."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from cli.client import ApiClient
from cli.context import Context, common_options, pass_context
from cli.errors import EXIT_CHECK_FAILED, ApiError, CliError, UnreachableError
from cli.output import emit_fields, emit_json
from cli.verify.chaos import Chaos, worker_pid
from cli.verify.check import FINISHED, Verdict, judge
from cli.verify.probe import APPROVER_ROLE, event_type, probe_workflow, workflow_id
from cli.verify.sink import Sink

PAGE_SIZE = 100
# An API answer worth asking again (the event's idempotency key makes it safe).
TRANSIENT = frozenset({429, 502, 503, 504})
SEND_TRIES = 5


@click.command()
@click.option(
    "--executions",
    "count",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="Executions to drive.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Events sent per second.",
)
@click.option(
    "--chaos",
    type=click.Choice(["local"]),
    help="local: SIGKILL the worker's pool processes on this machine during the run.",
)
@click.option("--worker-pid", type=int, help="With --chaos local: the Celery worker's main pid.")
@click.option(
    "--var-dir",
    default=lambda: os.environ.get("IW_VAR_DIR", "var"),
    show_default="$IW_VAR_DIR or var",
    help="With --chaos local and no --worker-pid: the stack's directory (make up's).",
)
@click.option(
    "--chaos-interval",
    type=click.FloatRange(min=0.2),
    default=3.0,
    show_default=True,
    help="Seconds between two kills.",
)
@click.option(
    "--sink-host", default="127.0.0.1", show_default=True, help="Address the local sink listens on."
)
@click.option(
    "--sink-port", type=click.IntRange(0, 65535), default=0, help="Its port (default: a free one)."
)
@click.option(
    "--sink-url", help="URL the deployment reaches the sink at (default: http://HOST:PORT)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds after the last event within which every execution must finish.",
)
@common_options
@pass_context
def verify(
    ctx: Context,
    *,
    count: int,
    rate: float,
    chaos: str | None,
    worker_pid: int | None,
    var_dir: str,
    chaos_interval: float,
    sink_host: str,
    sink_port: int,
    sink_url: str | None,
    timeout: float,
) -> None:
    """Drive executions of a probe workflow and check that none is lost or repeated.

    Deploys a probe workflow (a set step, an outbound call with retries to a sink
    this command runs, an approval it decides, a one-second timer), sends
    --executions events at --rate, and waits for every execution. Prints accepted,
    completed, lost (not finished within --timeout), duplicated effects (a key the
    sink received with another body, or more than one effect per execution),
    duplicated step transitions (from the traces) and p50/p95/p99 of event to
    finish. The probe workflow is deleted at the end. Exit code 0 only when every
    execution completed once, 4 when anything was lost, refused or repeated.
    """
    parent = worker_pid_of(chaos, worker_pid, var_dir)
    run_id = secrets.token_hex(4)
    sink = Sink(sink_host, sink_port).start()
    url = sink_url or f"http://{sink_host}:{sink.port}"
    client = ctx.client
    deployed = client.post("/workflows", probe_workflow(run_id, url))
    say(f"probe workflow {deployed['workflow_id']} deployed; sink at {url}")
    helpers: list[Any] = []
    try:
        approver = Approver(client, workflow_id(run_id)).start()
        helpers.append(approver)
        killer = Chaos(parent, chaos_interval).start() if parent is not None else None
        if killer is not None:
            helpers.append(killer)
            say(f"chaos: SIGKILL a pool process of worker {parent} every {chaos_interval:g}s")
        accepted = drive(client, run_id, count, rate, say)
        executions = await_finished(client, workflow_id(run_id), accepted, timeout, say)
        for helper in reversed(helpers):
            helper.stop()
        approver.raise_failure()
        traces = {i: client.get(f"/executions/{i}/trace")["steps"] for i in accepted}
        verdict = judge(count, accepted, executions, traces, sink.snapshot())
        killed = len(killer.killed) if killer is not None else None
    finally:
        for helper in reversed(helpers):
            helper.stop()
        remove(client, deployed["id"], say)
        sink.stop()
    show(ctx, verdict, killed, run_id)
    if not verdict.ok:
        raise click.exceptions.Exit(EXIT_CHECK_FAILED)


def worker_pid_of(chaos: str | None, pid: int | None, var_dir: str) -> int | None:
    if chaos is None:
        if pid is not None:
            raise click.UsageError("--worker-pid goes with --chaos local")
        return None
    return worker_pid(pid, var_dir)


def say(line: str) -> None:
    """A progress line: on stderr, so that --json output stays one document."""
    click.echo(line, err=True)


def drive(
    client: ApiClient, run_id: str, count: int, rate: float, say: Callable[[str], None]
) -> list[str]:
    """Send the events at `rate`; the ids of the executions they started."""
    started = time.monotonic()
    accepted: list[str] = []
    for n in range(count):
        pause = started + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        answer = send_event(client, run_id, n)
        accepted.extend(str(i) for i in answer.get("execution_ids") or [])
    say(f"{count} events sent in {time.monotonic() - started:.1f}s; {len(accepted)} accepted")
    return accepted


def send_event(client: ApiClient, run_id: str, n: int) -> dict[str, Any]:
    body = {
        "event_type": event_type(run_id),
        "payload": {"n": n, "run": run_id},
        "idempotency_key": f"iwctl-verify-{run_id}-{n}",
    }
    for attempt in range(1, SEND_TRIES + 1):
        try:
            return dict(client.post("/events", body))
        except (UnreachableError, ApiError) as exc:
            retry = isinstance(exc, UnreachableError) or exc.status in TRANSIENT
            if not retry or attempt == SEND_TRIES:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def await_finished(
    client: ApiClient,
    probe_id: str,
    accepted: list[str],
    timeout: float,
    say: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Every execution of the probe, polled until the accepted ones finished or
    `timeout` passed."""
    deadline = time.monotonic() + timeout
    wanted = set(accepted)
    while True:
        executions = list_executions(client, probe_id)
        finished = sum(1 for i in wanted if executions.get(i, {}).get("status") in FINISHED)
        if finished == len(wanted) or time.monotonic() > deadline:
            say(f"{finished} of {len(wanted)} executions finished")
            return executions
        time.sleep(1.0)


def list_executions(client: ApiClient, probe_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        answer = client.get(
            "/executions", {"workflow_id": probe_id, "page": page, "page_size": PAGE_SIZE}
        )
        found.update({str(e["id"]): e for e in answer["executions"]})
        if page * PAGE_SIZE >= answer["total"]:
            return found
        page += 1


class Approver:
    """Approves the probe's pending approvals as they come, until stopped."""

    def __init__(self, client: ApiClient, probe_id: str, interval: float = 0.3) -> None:
        self.client = client
        self.probe_id = probe_id
        self.interval = interval
        self.approved = 0
        self._failure: CliError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Approver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._approve_pending()
            except CliError as exc:  # refused credentials, an API gone: stop and say so
                self._failure = exc
                return

    def _approve_pending(self) -> None:
        answer = self.client.get(
            "/approvals", {"status": "pending", "role": APPROVER_ROLE, "page_size": PAGE_SIZE}
        )
        for approval in answer["approvals"]:
            if approval["workflow_id"] != self.probe_id:
                continue
            try:
                self.client.post(f"/approvals/{approval['id']}/approve", {"reason": "iwctl verify"})
            except ApiError as exc:
                if exc.status != 409:  # 409: decided meanwhile (expired); anything else is news
                    raise
            else:
                self.approved += 1


def remove(client: ApiClient, row_id: str, say: Callable[[str], None]) -> None:
    """Delete the probe workflow; executions still waiting are cancelled with it."""
    client.request("DELETE", f"/workflows/{row_id}", params={"force": "true"})
    say("probe workflow deleted")


def show(ctx: Context, verdict: Verdict, killed: int | None, run_id: str) -> None:
    if ctx.json:
        emit_json({"run": run_id, "workers_killed": killed, **verdict.to_dict()})
        return

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}s"

    pairs: list[tuple[str, Any]] = [
        ("requested", verdict.requested),
        ("accepted", verdict.accepted),
        ("completed", verdict.completed),
        ("lost", verdict.lost),
        ("failed", verdict.failed),
        ("duplicated effects", verdict.duplicated_effects),
        ("duplicated transitions", verdict.duplicated_transitions),
        (
            "effects performed",
            f"{verdict.effects_performed} (first tries refused by the sink: "
            f"{verdict.failed_first_tries}, keys sent again: {verdict.effects_repeated})",
        ),
        ("worker processes killed", "-" if killed is None else killed),
        ("event to finish p50", seconds(verdict.percentile(50))),
        ("event to finish p95", seconds(verdict.percentile(95))),
        ("event to finish p99", seconds(verdict.percentile(99))),
    ]
    emit_fields(pairs)
    if verdict.ok:
        click.echo("OK: every execution completed once; nothing lost or repeated")
    else:
        click.echo("FAILED: something was lost, refused or repeated (see above)")
