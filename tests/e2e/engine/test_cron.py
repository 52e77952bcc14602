"""Cron schedules firing on the real stack: the quote-expiration example's own six-hourly
trigger, a schedule created through the schedules API, and two beat processes sharing one
database and broker without firing any due time twice.

Six hours are not slept through: the schedule's `next_run_at` is moved into the past in
Postgres, as if the scheduler had been down, and the real scheduler job (every second
here) fires it.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.e2e.engine.team import (
    Team,
    executions_of,
    mails,
    make_due,
    make_team,
    record,
    records_where,
    uid,
)
from tests.e2e.stack import Stack
from tests.integration.engine.sinks import HttpSink, SmtpSink, wait_for

pytestmark = pytest.mark.e2e

QUOTE_EXPIRATION = "quote_expiration_management"
SIX_HOURS = timedelta(hours=6)


@pytest.fixture
def team(engine_stack: Stack) -> Team:
    return make_team(engine_stack)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def quote(hours_left: int, reminder_sent: bool, sink: HttpSink) -> dict[str, Any]:
    tag = uid("t")
    return {
        "quote": {
            "id": uid("q"),
            "number": uid("Q"),
            "hours_until_expiration": hours_left,
            "reminder_sent": reminder_sent,
            "customer_email": f"buyer-{tag}@example.com",
            "sales_rep_email": f"rep-{tag}@example.com",
            "sales_rep_id": "rep-7",
            "public_url": f"https://quotes.example.com/{tag}",
            "total": 900,
        },
        "customer": {"id": uid("c"), "name": "Globex"},
        "integrations": {"crm": {"webhook_url": f"{sink.url}/crm-{tag}"}},
    }


def scheduled_runs(team: Team, workflow_id: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Executions a schedule started with this payload (other schedules' runs excluded)."""
    return [
        e
        for e in executions_of(team.api, workflow_id)
        if e["trigger_type"] == "schedule" and e["trigger_payload"] == payload
    ]


def schedule(team: Team, schedule_id: str) -> dict[str, Any]:
    response = team.api.get(f"/schedules/{schedule_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_clear_of_a_six_hourly_due_time(margin: timedelta = timedelta(seconds=60)) -> None:
    """Start away from the next six-hourly due time: one that falls while the test
    runs fires for real and moves the schedule's last and next run (CI at b0784ab
    started at 17:59:59 and saw the 18:00 run)."""
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    boundary = hour + timedelta(hours=6 - now.hour % 6)
    if boundary - now < margin:
        time.sleep((boundary - now).total_seconds() + 1)


def test_the_quote_expiration_example_fires_on_its_six_hourly_cron(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    wait_clear_of_a_six_hourly_due_time()
    team.deploy("quote-expiration-management", http_sink.url)
    # Deploying is enough: the trigger's cron became a schedule.
    listed = team.api.get("/schedules", params={"workflow_id": QUOTE_EXPIRATION}).json()
    [derived] = listed["schedules"]
    assert (derived["from_trigger"], derived["cron"], derived["enabled"]) == (
        True,
        "0 */6 * * *",
        True,
    )
    upcoming = moment(derived["next_run_at"])
    assert (upcoming.hour % 6, upcoming.minute, upcoming.second) == (0, 0, 0)
    assert timedelta(0) < upcoming - datetime.now(UTC) <= SIX_HOURS

    payload = quote(0, True, http_sink)  # an expired quote: the expire branch
    updated = team.api.put(f"/schedules/{derived['id']}", {"payload": payload})
    assert updated.status_code == 200, updated.text
    missed = upcoming - SIX_HOURS  # the due time a scheduler that was down still owes
    make_due(db, derived["id"], missed)

    [run] = wait_for(lambda: scheduled_runs(team, QUOTE_EXPIRATION, payload), timeout=20)
    body = team.api.settle(run["id"])
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert team.api.path(run["id"]) == [
        "check_reminder_needed",
        "check_expired",
        "expire_quote",
        "complete_workflow",
    ]
    after = schedule(team, derived["id"])
    assert moment(after["last_run_at"]) == missed
    assert moment(after["next_run_at"]) == upcoming  # nothing more is due before then
    assert len(scheduled_runs(team, QUOTE_EXPIRATION, payload)) == 1

    quote_id, number = payload["quote"]["id"], payload["quote"]["number"]
    assert record(team.api, "quote", quote_id)["status"] == "expired"
    assert len(records_where(team.api, "task", "related_entity_id", quote_id)) == 1
    crm = http_sink.calls(payload["integrations"]["crm"]["webhook_url"].removeprefix(http_sink.url))
    assert [(c.body["event"], c.body["quote_id"]) for c in crm] == [("quote_expired", quote_id)]
    rep = payload["quote"]["sales_rep_email"]
    assert wait_for(lambda: mails(smtp_sink, rep, f"Quote {number} for Globex"))


def test_a_schedule_created_through_the_api_fires_its_missed_runs_once(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    workflow = team.deploy("quote-expiration-management", http_sink.url)
    payload = quote(12, False, http_sink)  # expires within a day: the reminder branch
    created = team.api.post(
        f"/workflows/{workflow['id']}/schedules",
        {"cron": "30 9 * * 1-5", "timezone": "America/New_York", "payload": payload},
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    runs = team.api.get(f"/schedules/{schedule_id}/next-runs", params={"count": 3}).json()
    upcoming = [moment(value) for value in runs["next_runs"]]
    new_york = ZoneInfo("America/New_York")
    for due in upcoming:
        local = due.astimezone(new_york)
        assert (local.hour, local.minute, local.weekday() < 5) == (9, 30, True)
    assert upcoming == sorted(upcoming)
    assert moment(created.json()["next_run_at"]) == upcoming[0]

    # Down for a week: five due times missed, one catch-up run for all of them.
    week_ago = upcoming[0].astimezone(new_york) - timedelta(days=7)
    make_due(db, schedule_id, week_ago.astimezone(UTC))
    [run] = wait_for(lambda: scheduled_runs(team, QUOTE_EXPIRATION, payload), timeout=20)
    body = team.api.settle(run["id"])
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert team.api.path(run["id"]) == [
        "check_reminder_needed",
        "send_reminder",
        "check_expired",
        "continue_monitoring",
        "complete_workflow",
    ]
    after = schedule(team, schedule_id)
    last = moment(after["last_run_at"]).astimezone(new_york)
    assert (last.hour, last.minute) == (9, 30)
    assert week_ago < last < datetime.now(UTC)
    assert moment(after["next_run_at"]) == upcoming[0]
    assert len(scheduled_runs(team, QUOTE_EXPIRATION, payload)) == 1

    number = payload["quote"]["number"]
    assert record(team.api, "quote", payload["quote"]["id"])["reminder_sent"] is True
    for address in (payload["quote"]["customer_email"], payload["quote"]["sales_rep_email"]):
        assert wait_for(lambda address=address: mails(smtp_sink, address, f"Quote {number}"))
    slack = [c.body for c in http_sink.calls("/slack") if number in str(c.body)]
    assert [s["channel"] for s in slack] == ["#sales-notifications"]


# --- two beats ------------------------------------------------------------------------------
def ticking_workflow(team: Team) -> dict[str, Any]:
    return team.api.deploy(
        {
            "workflow_id": uid("tick").replace("-", "_"),
            "version": "1",
            "name": "Every second",
            "definition": {
                "trigger": {"type": "manual"},
                "steps": [
                    {
                        "id": "tick",
                        "type": "execute",
                        "execute": [{"type": "set", "values": {"ticked": True}}],
                        "next": "done",
                    },
                    {"id": "done", "type": "action", "action": {"type": "allow"}},
                ],
            },
        }
    )


def fired_due_times(db: Engine, workflow: dict[str, Any]) -> Counter[datetime]:
    """Executions per due time. A per-second cron's run is fired for the latest due second
    at or before the scheduler's `now` (models.schedule_repository.advance), and that `now`
    is the execution's `started_at`: so its due time is `started_at` truncated to the
    second, and two runs of one due time would share it."""
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT date_trunc('second', started_at) FROM executions"
                " WHERE organization_id = :org AND workflow_id = :slug"
                " AND trigger_type = 'schedule'"
            ),
            {"org": workflow["organization_id"], "slug": workflow["workflow_id"]},
        )
        return Counter(row[0] for row in rows)


def sends_of_the_scheduler(stack: Stack, beat: str) -> int:
    """How many times this beat process has sent the scheduler job (its whole log)."""
    log = (stack.workdir / f"{beat}.log").read_text(errors="replace")
    return log.count("Sending due task scheduler (workflows.fire_schedules)")


def test_two_beats_fire_each_due_time_of_a_schedule_once(
    engine_stack: Stack, team: Team, db: Engine
) -> None:
    workflow = ticking_workflow(team)
    engine_stack.start_beat("beat-2")  # its own schedule file; same database and broker
    try:
        wait_for(lambda: sends_of_the_scheduler(engine_stack, "beat-2") >= 1, timeout=30)
        created = team.api.post(f"/workflows/{workflow['id']}/schedules", {"cron": "* * * * * *"})
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        sent_before = {b: sends_of_the_scheduler(engine_stack, b) for b in ("beat", "beat-2")}
        wait_for(lambda: sum(fired_due_times(db, workflow).values()) >= 8, timeout=60)
        disabled = team.api.put(f"/schedules/{schedule_id}", {"enabled": False})
        assert disabled.status_code == 200, disabled.text
        sent_after = {b: sends_of_the_scheduler(engine_stack, b) for b in ("beat", "beat-2")}
    finally:
        engine_stack.stop("beat-2")
    # Both beats sent the scheduler job during the window: the replicas really raced.
    assert all(sent_after[b] > sent_before[b] for b in sent_before), (sent_before, sent_after)

    due_times = fired_due_times(db, workflow)
    assert sum(due_times.values()) >= 8
    assert max(due_times.values()) == 1, due_times  # never two runs for one due time
    last_run = moment(schedule(team, schedule_id)["last_run_at"])
    assert last_run == max(due_times).astimezone(UTC)
    for run in executions_of(team.api, workflow["workflow_id"]):
        body = team.api.settle(run["id"])
        assert (body["status"], body["result"]) == ("completed", "allowed")
        assert body["context"]["ticked"] is True
