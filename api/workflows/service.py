"""Workflow definitions: the logic between the views and the database.

Every change and its audit entry commit in one transaction. At most one version
of a workflow_id is enabled: enabling one disables the others first, under row
locks, and the partial unique index turns a lost race into a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.errors import abort
from api.pagination import paginate
from api.schedules.service import sync_trigger_schedules
from api.services import services
from engine.definition import is_wrapped, wants_enabled
from engine.errors import DefinitionError, Problem
from engine.state import ACTIVE_STATES
from engine.validation import validate_workflow
from models.execution import Execution
from models.workflow import Workflow
from tasks import control

ONE_ENABLED_INDEX = "uq_workflows_one_enabled_version"
UNIQUE_VERSION = "uq_workflows_organization_id_workflow_id_version"
# Column widths, checked here so an over-long value is a 422 and not a 500.
COLUMN_LIMITS = {"workflow_id": 100, "version": 50, "name": 200}
TRIGGER_EVENT_LIMIT = 200
IMMUTABLE_KEYS = ("workflow_id", "version")
CANCELLED_BY_DELETE = "Cancelled because its workflow version was deleted"


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised workflow, or DefinitionError with every problem (a 422)."""
    normalised = validate_workflow(raw)
    problems = [
        Problem(key, f"must be at most {limit} characters")
        for key, limit in COLUMN_LIMITS.items()
        if len(str(normalised.get(key) or "")) > limit
    ]
    event = normalised["definition"]["trigger"].get("event")
    if isinstance(event, str) and len(event) > TRIGGER_EVENT_LIMIT:
        path = "definition.trigger.event" if is_wrapped(raw) else "trigger.event"
        problems.append(Problem(path, f"must be at most {TRIGGER_EVENT_LIMIT} characters"))
    if problems:
        raise DefinitionError(problems)
    return normalised


def create_workflow(principal: Principal, raw: Mapping[str, Any]) -> Workflow:
    normalised = validate(raw)
    enabled = bool(wants_enabled(raw))
    with services().unit_of_work() as uow:
        session = uow.session
        if _find_version(session, principal.organization_id, normalised) is not None:
            _conflict_duplicate(normalised)
        disabled: list[str] = []
        if enabled:
            _lock_versions(session, principal.organization_id, normalised["workflow_id"])
            disabled = _disable_other_versions(
                session, principal.organization_id, normalised["workflow_id"], keep=None
            )
        row = Workflow(
            organization_id=principal.organization_id,
            created_by=principal.user_id,
            enabled=enabled,
            **_columns(normalised),
        )
        session.add(row)
        _flush_or_conflict(session, normalised)
        sync_trigger_schedules(
            session, principal.organization_id, row.workflow_id, created_by=principal.user_id
        )
        record_audit(
            session,
            "workflow_created",
            "workflow",
            row.id,
            {
                "workflow_id": row.workflow_id,
                "version": row.version,
                "enabled": enabled,
                "disabled_versions": disabled,
            },
            principal=principal,
        )
        session.refresh(row)
        uow.commit()
        return row


def list_workflows(organization_id: uuid.UUID, query: Mapping[str, Any]) -> dict[str, Any]:
    statement = _filtered(
        select(Workflow).where(Workflow.organization_id == organization_id), query
    )
    if query.get("latest"):
        newest = (
            statement.with_only_columns(Workflow.id)
            .ext(distinct_on(Workflow.workflow_id))
            .order_by(Workflow.workflow_id, Workflow.created_at.desc(), Workflow.id.desc())
        )
        statement = select(Workflow).where(Workflow.id.in_(newest.scalar_subquery()))
    statement = statement.order_by(Workflow.created_at.desc(), Workflow.id.desc())
    with services().session_factory() as session:
        return paginate(session, statement, query["page"], query["page_size"], "workflows")


def get_workflow(organization_id: uuid.UUID, row_id: uuid.UUID) -> Workflow:
    with services().session_factory() as session:
        return _load(session, organization_id, row_id)


def get_workflow_in(session: Session, organization_id: uuid.UUID, row_id: uuid.UUID) -> Workflow:
    """One version in the caller's session (a 404 when the organization has no such row)."""
    return _load(session, organization_id, row_id)


def list_versions(
    organization_id: uuid.UUID, row_id: uuid.UUID, page: int, page_size: int
) -> dict[str, Any]:
    with services().session_factory() as session:
        row = _load(session, organization_id, row_id)
        statement = (
            select(Workflow)
            .where(
                Workflow.organization_id == organization_id,
                Workflow.workflow_id == row.workflow_id,
            )
            .order_by(Workflow.created_at.desc(), Workflow.id.desc())
        )
        return paginate(session, statement, page, page_size, "versions")


def update_workflow(principal: Principal, row_id: uuid.UUID, raw: Mapping[str, Any]) -> Workflow:
    """Replace name, description, tags and definition of one version.

    `workflow_id` and `version` identify the version and cannot change: they
    may be omitted (the stored ones are used) or repeated unchanged; anything
    else is a 422. `enabled` is ignored here (use /enable and /disable).
    """
    with services().unit_of_work() as uow:
        session = uow.session
        row = _load(session, principal.organization_id, row_id, lock=True)
        _refuse_identity_change(row, raw)
        normalised = validate({**raw, "workflow_id": row.workflow_id, "version": row.version})
        before = _editable(row)
        for key, value in _columns(normalised).items():
            setattr(row, key, value)
        after = _editable(row)
        changed = sorted(key for key in before if before[key] != after[key])
        session.flush()
        sync_trigger_schedules(
            session, principal.organization_id, row.workflow_id, created_by=principal.user_id
        )
        record_audit(
            session,
            "workflow_updated",
            "workflow",
            row.id,
            {"workflow_id": row.workflow_id, "version": row.version, "changed": changed},
            principal=principal,
        )
        session.flush()
        session.refresh(row)
        uow.commit()
        return row


def set_enabled(principal: Principal, row_id: uuid.UUID, enabled: bool) -> Workflow:
    """Enable or disable one version; idempotent. Enabling disables the other versions."""
    with services().unit_of_work() as uow:
        session = uow.session
        row = _load(session, principal.organization_id, row_id)
        _lock_versions(session, principal.organization_id, row.workflow_id)
        if row.enabled == enabled:
            uow.commit()  # releases the lock; a rollback would expire the row
            return row
        disabled: list[str] = []
        if enabled:
            disabled = _disable_other_versions(
                session, principal.organization_id, row.workflow_id, keep=row.id
            )
        row.enabled = enabled
        _flush_or_conflict(session, {"workflow_id": row.workflow_id, "version": row.version})
        sync_trigger_schedules(
            session, principal.organization_id, row.workflow_id, created_by=principal.user_id
        )
        changes: dict[str, Any] = {"workflow_id": row.workflow_id, "version": row.version}
        if enabled:
            changes["disabled_versions"] = disabled
        action = "workflow_enabled" if enabled else "workflow_disabled"
        record_audit(session, action, "workflow", row.id, changes, principal=principal)
        session.flush()
        session.refresh(row)
        uow.commit()
        return row


def delete_workflow(principal: Principal, row_id: uuid.UUID, *, force: bool) -> None:
    """Delete one version. Refused (409) while it has active executions, unless `force`,
    which cancels them in the same transaction like any cancel (their waits, approvals
    and tickets closed)."""
    with services().unit_of_work() as uow:
        session = uow.session
        row = _load(session, principal.organization_id, row_id, lock=True)
        active = list(
            session.scalars(
                select(Execution)
                .where(
                    Execution.workflow_row_id == row.id,
                    Execution.status.in_([str(state) for state in ACTIVE_STATES]),
                )
                .order_by(Execution.id)
                .with_for_update()
            )
        )
        active_ids = [str(execution.id) for execution in active]
        if active and not force:
            abort(
                409,
                f"The workflow version has {len(active)} active execution(s); "
                "cancel them or delete with ?force=true",
                {"active_executions": active_ids},
            )
        now = datetime.now(UTC)
        cancelled = [
            control.cancel(session, execution, now, CANCELLED_BY_DELETE) for execution in active
        ]
        record_audit(
            session,
            "workflow_deleted",
            "workflow",
            row.id,
            {
                "workflow_id": row.workflow_id,
                "version": row.version,
                "cancelled_executions": active_ids,
            },
            principal=principal,
        )
        session.delete(row)
        uow.commit()
    for result in cancelled:
        for record in result.after_commit:
            record()


def _filtered(statement: Select[Any], query: Mapping[str, Any]) -> Select[Any]:
    if query.get("search"):
        needle = query["search"]
        statement = statement.where(
            Workflow.name.icontains(needle, autoescape=True)
            | Workflow.workflow_id.icontains(needle, autoescape=True)
        )
    tags = _split_tags(query.get("tag") or [])
    if tags:
        statement = statement.where(Workflow.tags.contains(tags))
    if query.get("enabled") is not None:
        statement = statement.where(Workflow.enabled.is_(query["enabled"]))
    if query.get("workflow_id"):
        statement = statement.where(Workflow.workflow_id == query["workflow_id"])
    if query.get("trigger_type"):
        statement = statement.where(Workflow.trigger_type == query["trigger_type"])
    return statement


def _split_tags(values: list[str]) -> list[str]:
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _load(
    session: Session, organization_id: uuid.UUID, row_id: uuid.UUID, *, lock: bool = False
) -> Workflow:
    statement = select(Workflow).where(
        Workflow.id == row_id, Workflow.organization_id == organization_id
    )
    if lock:
        statement = statement.with_for_update()
    row = session.scalars(statement).first()
    if row is None:
        abort(404, "Workflow not found")
    return row


def _find_version(
    session: Session, organization_id: uuid.UUID, normalised: Mapping[str, Any]
) -> Workflow | None:
    return session.scalars(
        select(Workflow).where(
            Workflow.organization_id == organization_id,
            Workflow.workflow_id == normalised["workflow_id"],
            Workflow.version == normalised["version"],
        )
    ).first()


def _disable_other_versions(
    session: Session, organization_id: uuid.UUID, workflow_id: str, keep: uuid.UUID | None
) -> list[str]:
    """Disable every other enabled version (the caller holds their locks); returns their labels."""
    others = (
        update(Workflow)
        .where(
            Workflow.organization_id == organization_id,
            Workflow.workflow_id == workflow_id,
            Workflow.enabled.is_(True),
        )
        .values(enabled=False)
        .returning(Workflow.version)
    )
    if keep is not None:
        others = others.where(Workflow.id != keep)
    return sorted(session.scalars(others))


def _lock_versions(session: Session, organization_id: uuid.UUID, workflow_id: str) -> None:
    """Lock every version of a workflow, in id order, and reload them.

    Concurrent enables of one workflow then run one after the other, and the
    second sees the first's commit; a fixed lock order cannot deadlock.
    """
    session.execute(
        select(Workflow)
        .where(Workflow.organization_id == organization_id, Workflow.workflow_id == workflow_id)
        .order_by(Workflow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def _flush_or_conflict(session: Session, identity: Mapping[str, Any]) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        if constraint == ONE_ENABLED_INDEX:
            abort(
                409,
                f"Another version of {identity['workflow_id']!r} was enabled concurrently; retry",
            )
        if constraint == UNIQUE_VERSION:
            _conflict_duplicate(identity)
        raise


def _conflict_duplicate(identity: Mapping[str, Any]) -> NoReturn:
    abort(
        409,
        f"Workflow {identity['workflow_id']!r} version {identity['version']!r} already exists",
        {"version": ["already exists for this workflow_id"]},
    )


def _refuse_identity_change(row: Workflow, raw: Mapping[str, Any]) -> None:
    current = {"workflow_id": row.workflow_id, "version": row.version}
    problems = [
        Problem(key, f"cannot be changed (is {current[key]!r}); create a new version instead")
        for key in IMMUTABLE_KEYS
        if key in raw and raw[key] is not None and str(raw[key]) != current[key]
    ]
    if problems:
        raise DefinitionError(problems)


def _columns(normalised: Mapping[str, Any]) -> dict[str, Any]:
    definition = normalised["definition"]
    trigger = definition["trigger"]
    return {
        "workflow_id": normalised["workflow_id"],
        "version": normalised["version"],
        "name": normalised["name"],
        "description": normalised.get("description"),
        "tags": list(normalised.get("tags") or []),
        "definition": definition,
        "trigger_type": trigger["type"],
        "trigger_event": trigger.get("event") if isinstance(trigger.get("event"), str) else None,
    }


def _editable(row: Workflow) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "tags": list(row.tags or []),
        "definition": row.definition,
    }
