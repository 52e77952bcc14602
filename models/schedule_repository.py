"""Claiming due cron schedules, safely across any number of beat or worker replicas.

The scheduler job (beat) calls, in one transaction per batch::

    with uow:
        for schedule in claim_due_schedules(uow.session, now, limit):
            due = advance(schedule, now)
            if due is not None:
                ...start the workflow for (schedule, due) in the same transaction...
        uow.commit()

`claim_due_schedules` locks the rows it returns with ``FOR UPDATE SKIP LOCKED``:
a second replica running the same query at the same time skips them and takes
the next ones, so a due time is fired by exactly one replica. `advance` moves
the schedule past ``now``; once committed, the row is no longer due. A replica
that dies before committing releases its locks and nothing moved, so another
replica fires the same due time instead (at most once per commit, never lost).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.schedule import latest_due, next_runs
from models.workflow import Schedule

_JUST_BEFORE = timedelta(microseconds=1)


def claim_due_schedules(session: Session, now: datetime, limit: int) -> list[Schedule]:
    """Lock and return up to ``limit`` enabled schedules due at ``now``, most overdue first.

    Rows locked by another open transaction are skipped, not waited for.
    """
    statement = (
        select(Schedule)
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at, Schedule.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def advance(schedule: Schedule, now: datetime) -> datetime | None:
    """Record one run of a claimed schedule and move it to its next due time after ``now``.

    Returns the due time being fired: the latest cron time in
    ``[next_run_at, now]``. However many due times were missed (the scheduler
    was down), exactly one run fires for them: ``last_run_at`` becomes that due
    time and ``next_run_at`` the first cron time strictly after ``now``.

    A schedule whose cron or timezone no longer parses is disabled (its
    ``next_run_at`` cleared) and None is returned: nothing fires for it, and it
    is not claimed again on every tick.
    """
    scheduled = schedule.next_run_at
    if scheduled is None:
        return None
    try:
        due = latest_due(schedule.cron, schedule.timezone, scheduled - _JUST_BEFORE, now)
        upcoming = next_runs(schedule.cron, schedule.timezone, now, 1)
    except ValueError:
        schedule.enabled = False
        schedule.next_run_at = None
        return None
    fired = due or scheduled
    schedule.last_run_at = fired
    schedule.next_run_at = upcoming[0] if upcoming else None
    return fired
