"""Schedules: validation with the engine's cron rules, storage, due-time bookkeeping.

`next_run_at` is the durable due-time the scheduler job claims
(models.schedule_repository). It is computed from now when a schedule is
created, enabled, or its cron or timezone change; it is null while disabled.

A workflow version whose trigger is `schedule` gets its own schedule
(`from_trigger`), kept in step with the version by `sync_trigger_schedules`:
enabled while the version is enabled, with the trigger's cron and timezone.
At most one version of a workflow is enabled, so its cron fires once per due
time whichever version is current.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.errors import abort
from api.pagination import paginate
from api.services import services
from engine.definition import Trigger
from engine.schedule import next_runs, timezone_problem, validate_cron
from models.workflow import Schedule, Workflow

EDITABLE = ("cron", "timezone", "payload", "enabled")


def check_cron(cron: str, timezone: str) -> None:
    """422 with each problem under the field it belongs to (`cron`, `timezone`)."""
    errors: dict[str, list[str]] = {}
    tz_problem = timezone_problem(timezone)
    if tz_problem is not None:
        errors["timezone"] = [tz_problem]
    # Checked in UTC so that a bad timezone is reported once, under its own field.
    cron_problems = validate_cron(cron, "UTC")
    if cron_problems:
        errors["cron"] = cron_problems
    if errors:
        abort(422, "The schedule is invalid", errors)


def create_schedule(
    principal: Principal, workflow_row_id: uuid.UUID, data: Mapping[str, Any]
) -> Schedule:
    check_cron(data["cron"], data["timezone"])
    with services().unit_of_work() as uow:
        session = uow.session
        workflow = _load_workflow(session, principal.organization_id, workflow_row_id)
        schedule = Schedule(
            organization_id=principal.organization_id,
            workflow_row_id=workflow.id,
            workflow_id=workflow.workflow_id,
            cron=data["cron"].strip(),
            timezone=data["timezone"],
            payload=dict(data["payload"]),
            enabled=data["enabled"],
            from_trigger=False,
            created_by=principal.user_id,
        )
        schedule.next_run_at = _next_due(schedule)
        session.add(schedule)
        session.flush()
        record_audit(
            session,
            "schedule_created",
            "schedule",
            schedule.id,
            {
                "workflow_id": schedule.workflow_id,
                "cron": schedule.cron,
                "timezone": schedule.timezone,
                "enabled": schedule.enabled,
            },
            principal=principal,
        )
        session.refresh(schedule)
        uow.commit()
        return schedule


def list_schedules(
    organization_id: uuid.UUID,
    query: Mapping[str, Any],
    workflow_row_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    statement = select(Schedule).where(Schedule.organization_id == organization_id)
    with services().session_factory() as session:
        if workflow_row_id is not None:
            _load_workflow(session, organization_id, workflow_row_id)
            statement = statement.where(Schedule.workflow_row_id == workflow_row_id)
        if query.get("workflow_id"):
            statement = statement.where(Schedule.workflow_id == query["workflow_id"])
        if query.get("enabled") is not None:
            statement = statement.where(Schedule.enabled.is_(query["enabled"]))
        statement = statement.order_by(Schedule.created_at.desc(), Schedule.id.desc())
        return paginate(session, statement, query["page"], query["page_size"], "schedules")


def get_schedule(organization_id: uuid.UUID, schedule_id: uuid.UUID) -> Schedule:
    with services().session_factory() as session:
        return _load(session, organization_id, schedule_id)


def update_schedule(
    principal: Principal, schedule_id: uuid.UUID, data: Mapping[str, Any]
) -> Schedule:
    """Replace the fields given; an update that changes nothing records nothing."""
    with services().unit_of_work() as uow:
        session = uow.session
        schedule = _load(session, principal.organization_id, schedule_id, lock=True)
        before = {key: getattr(schedule, key) for key in EDITABLE}
        after = {**before, **{key: data[key] for key in EDITABLE if key in data}}
        after["cron"] = after["cron"].strip()
        if (after["cron"], after["timezone"]) != (before["cron"], before["timezone"]):
            check_cron(after["cron"], after["timezone"])
        changed = sorted(key for key in EDITABLE if after[key] != before[key])
        if _timing_changed(changed):
            _refuse_if_from_trigger(schedule, "re-timed")
        if not changed:
            uow.commit()  # releases the lock; a rollback would expire the row
            return schedule
        for key in changed:
            setattr(schedule, key, after[key])
        if _timing_changed(changed) or (schedule.enabled and schedule.next_run_at is None):
            schedule.next_run_at = _next_due(schedule)
        record_audit(
            session,
            "schedule_updated",
            "schedule",
            schedule.id,
            {
                "workflow_id": schedule.workflow_id,
                "changed": changed,
                "before": {key: before[key] for key in changed if key != "payload"},
                "after": {key: after[key] for key in changed if key != "payload"},
            },
            principal=principal,
        )
        session.flush()
        session.refresh(schedule)
        uow.commit()
        return schedule


def delete_schedule(principal: Principal, schedule_id: uuid.UUID) -> None:
    with services().unit_of_work() as uow:
        session = uow.session
        schedule = _load(session, principal.organization_id, schedule_id, lock=True)
        _refuse_if_from_trigger(schedule, "deleted")
        record_audit(
            session,
            "schedule_deleted",
            "schedule",
            schedule.id,
            {"workflow_id": schedule.workflow_id, "cron": schedule.cron},
            principal=principal,
        )
        session.delete(schedule)
        uow.commit()


def _refuse_if_from_trigger(schedule: Schedule, verb: str) -> None:
    # The workflow's definition owns its timing and existence (sync_trigger_schedules
    # would undo a change at the workflow's next edit); its payload is the schedule's.
    if schedule.from_trigger:
        abort(
            409,
            f"This schedule comes from the workflow's schedule trigger and cannot be {verb} "
            "here: change, disable or delete the workflow version instead",
        )


def upcoming_runs(organization_id: uuid.UUID, schedule_id: uuid.UUID, count: int) -> dict[str, Any]:
    """The next `count` due times after now (whether or not the schedule is enabled)."""
    schedule = get_schedule(organization_id, schedule_id)
    try:
        runs = next_runs(schedule.cron, schedule.timezone, datetime.now(UTC), count)
    except ValueError as exc:  # stored before a validation rule tightened
        abort(409, f"The schedule's cron can no longer be evaluated: {exc}")
    return {
        "schedule_id": schedule.id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "next_runs": runs,
    }


def sync_trigger_schedules(
    session: Session,
    organization_id: uuid.UUID,
    workflow_id: str,
    *,
    created_by: uuid.UUID | None,
) -> None:
    """Bring the `from_trigger` schedules of every version of a workflow in line with the
    versions, in the caller's transaction (after a create, update, enable or disable).

    A version with a schedule trigger has one, enabled exactly while the version is;
    an unchanged enabled schedule keeps its due time; a version whose trigger is no
    longer a schedule loses it.
    """
    versions = session.scalars(
        select(Workflow).where(
            Workflow.organization_id == organization_id, Workflow.workflow_id == workflow_id
        )
    ).all()
    derived = {
        schedule.workflow_row_id: schedule
        for schedule in session.scalars(
            select(Schedule)
            .where(
                Schedule.organization_id == organization_id,
                Schedule.workflow_id == workflow_id,
                Schedule.from_trigger.is_(True),
            )
            .order_by(Schedule.id)
            .with_for_update()
        )
    }
    for version in versions:
        trigger = Trigger.from_dict(version.definition["trigger"])
        schedule = derived.get(version.id)
        if trigger.type != "schedule" or not trigger.cron:
            if schedule is not None:
                session.delete(schedule)
            continue
        if schedule is None:
            schedule = Schedule(
                organization_id=organization_id,
                workflow_row_id=version.id,
                workflow_id=workflow_id,
                payload={},
                from_trigger=True,
                created_by=created_by,
            )
            session.add(schedule)
        timing = (trigger.cron.strip(), trigger.timezone, version.enabled)
        if (schedule.cron, schedule.timezone, schedule.enabled) == timing:
            continue
        schedule.cron, schedule.timezone, schedule.enabled = timing
        schedule.next_run_at = _next_due(schedule)


def _timing_changed(changed: list[str]) -> bool:
    return bool({"cron", "timezone", "enabled"} & set(changed))


def _next_due(schedule: Schedule) -> datetime | None:
    if not schedule.enabled:
        return None
    return next_runs(schedule.cron, schedule.timezone, datetime.now(UTC), 1)[0]


def _load_workflow(session: Session, organization_id: uuid.UUID, row_id: uuid.UUID) -> Workflow:
    workflow = session.scalars(
        select(Workflow).where(Workflow.id == row_id, Workflow.organization_id == organization_id)
    ).first()
    if workflow is None:
        abort(404, "Workflow not found")
    return workflow


def _load(
    session: Session, organization_id: uuid.UUID, schedule_id: uuid.UUID, *, lock: bool = False
) -> Schedule:
    statement = select(Schedule).where(
        Schedule.id == schedule_id, Schedule.organization_id == organization_id
    )
    if lock:
        statement = statement.with_for_update()
    schedule = session.scalars(statement).first()
    if schedule is None:
        abort(404, "Schedule not found")
    return schedule
