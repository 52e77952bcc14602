"""Running a stored shadow report: read recorded rows, feed engine.shadow, store the result.

One code path for a report answered inline by the request and one run by a
worker (tasks.jobs.run_shadow): `run_report`. Events are streamed with a
server-side cursor in chunks; for each chunk the recorded executions, their
top-level step runs, approvals and ended waits are read in one query each, the
chunk is compared, and its differences are written and committed before the
next chunk is read: memory stays bounded by the chunk, whatever the window.

Nothing is performed: the engine's dry run records would-be requests. The only
rows written are the report's own.

A worker killed mid-report leaves it `running`; the redelivered message (acks
late) runs it again from the start, its partial differences deleted first. Each
run marks its claim (`started_at`) and writes only while the claim is still its
own, so a run superseded by a later delivery stops without touching the report.
A report nothing runs any more (its message lost with the broker, the request
that answered it inline cut short) falls silent: the sweeper queues it again
(`requeue_stalled`), and fails it once MAX_ATTEMPTS runs have stopped short.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Select, delete, false, func, insert, null, or_, select
from sqlalchemy.orm import Session, sessionmaker

from engine.definition import Definition
from engine.enrichment import recorded_loads
from engine.shadow import (
    Comparison,
    RecordedEvent,
    RecordedRun,
    RecordedStep,
    ShadowRun,
    ShadowSummary,
)
from engine.templating import TemplateRenderer
from models.execution import Approval, Event, Execution, StepRun, Wait
from models.shadow import ShadowDifference, ShadowReport
from models.workflow import Rule

log = structlog.get_logger(__name__)

RUN_SHADOW = "workflows.run_shadow"
WORKER_TYPE = "shadow_run"
# A report of at most this many events is answered by the request itself.
INLINE_LIMIT = 500
CHUNK = 500
# A new wait step looks at most this many later events of its type for its match.
LATER_EVENTS_LIMIT = 1000
PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
# A report whose run shows no sign of life for this long (a claim, a chunk written:
# a few seconds apart) is taken as abandoned and queued again; after MAX_ATTEMPTS
# runs that all stopped short it fails instead.
STALL = timedelta(minutes=10)
MAX_ATTEMPTS = 3
STALLED_BATCH = 100


@dataclass(frozen=True)
class Selection:
    """Which recorded events a report replays (validated by the API)."""

    since: datetime | None = None
    until: datetime | None = None
    event_ids: tuple[uuid.UUID, ...] = ()
    limit: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selection:
        return cls(
            since=_parse_time(data.get("since")),
            until=_parse_time(data.get("until")),
            event_ids=tuple(uuid.UUID(str(i)) for i in data.get("event_ids") or ()),
            limit=data.get("limit"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "event_ids": [str(i) for i in self.event_ids],
            "limit": self.limit,
        }


def events_statement(
    organization_id: uuid.UUID, patterns: Iterable[str | None], selection: Selection
) -> Select[Any]:
    """The recorded events a report considers, newest first: those of a type either
    trigger listens to, in the selection."""
    statement = select(
        Event.id,
        Event.event_type,
        Event.payload,
        Event.received_at,
        Event.triggered_workflows,
        Event.execution_ids,
    ).where(Event.organization_id == organization_id)
    type_filter = _type_filter(patterns)
    if type_filter is not None:
        statement = statement.where(type_filter)
    if selection.since is not None:
        statement = statement.where(Event.received_at >= selection.since)
    if selection.until is not None:
        statement = statement.where(Event.received_at < selection.until)
    if selection.event_ids:
        statement = statement.where(Event.id.in_(selection.event_ids))
    statement = statement.order_by(Event.received_at.desc(), Event.id)
    if selection.limit is not None:
        statement = statement.limit(selection.limit)
    return statement


def is_small(session: Session, statement: Select[Any]) -> bool:
    """Whether a report over `statement` is short enough to answer inline."""
    capped = statement.order_by(None).limit(INLINE_LIMIT + 1).subquery()
    return (session.scalar(select(func.count()).select_from(capped)) or 0) <= INLINE_LIMIT


def run_report(
    session_factory: sessionmaker[Session],
    report_id: uuid.UUID,
    renderer: TemplateRenderer,
    *,
    now: datetime | None = None,
) -> int:
    """Run a pending (or interrupted) report to completion; the events replayed.

    A report already completed or failed is left as it is (a redelivered message).
    """
    claimed = _claim(session_factory, report_id)
    if claimed is None:
        return 0
    try:
        summary = _replay(session_factory, claimed, renderer, now or datetime.now(UTC))
        _finish(session_factory, claimed, COMPLETED, summary.to_dict(), None)
    except Superseded:
        log.info("shadow_report_superseded", report_id=str(report_id))
        return 0
    except Exception as exc:
        log.exception("shadow_report_failed", report_id=str(report_id))
        _finish(session_factory, claimed, FAILED, None, repr(exc))
        raise
    return summary.events_replayed


def mark_failed(session_factory: sessionmaker[Session], report_id: uuid.UUID, why: str) -> None:
    """A pending report that will not run (its message could not be queued)."""
    with session_factory() as session, session.begin():
        report = session.get(ShadowReport, report_id, with_for_update=True)
        if report is not None and report.status == PENDING:
            report.status = FAILED
            report.error_message = why
            report.completed_at = datetime.now(UTC)


def requeue_stalled(
    session_factory: sessionmaker[Session],
    send: Callable[[str, dict[str, Any]], None],
    now: datetime,
) -> int:
    """Queue again the reports nothing runs any more (silent for STALL), or fail those
    whose runs stopped MAX_ATTEMPTS times; how many were found."""
    with session_factory() as session, session.begin():
        stalled = session.scalars(
            select(ShadowReport)
            .where(
                ShadowReport.status.in_((PENDING, RUNNING)),
                func.coalesce(ShadowReport.heartbeat_at, ShadowReport.created_at) < now - STALL,
            )
            .order_by(ShadowReport.created_at)
            .limit(STALLED_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        again = []
        for report in stalled:
            if report.attempts >= MAX_ATTEMPTS:
                report.status = FAILED
                report.error_message = f"its run stopped without finishing {report.attempts} times"
                report.completed_at = now
            else:
                report.heartbeat_at = now  # the new message's: not queued again before STALL
                again.append(report.id)
    for report_id in again:
        log.warning("shadow_report_requeued", report_id=str(report_id))
        try:
            send(RUN_SHADOW, {"report_id": str(report_id)})
        except Exception as exc:  # a broker failure: the next sweep after STALL tries again
            log.warning("shadow_report_requeue_failed", report_id=str(report_id), error=repr(exc))
    return len(stalled)


class Superseded(Exception):
    """Another delivery of the report's message claimed it since: that run owns it."""


@dataclass(frozen=True)
class _Claimed:
    report_id: uuid.UUID
    # The claim's own mark: a later claim (a redelivered message) changes it.
    claimed_at: datetime
    organization_id: uuid.UUID
    workflow_id: str
    current: Definition
    candidate: Definition
    selection: Selection


def _claim(session_factory: sessionmaker[Session], report_id: uuid.UUID) -> _Claimed | None:
    with session_factory() as session, session.begin():
        report = session.get(ShadowReport, report_id, with_for_update=True)
        if report is None or report.status not in (PENDING, RUNNING):
            return None
        # A run cut short left some differences: start over.
        session.execute(delete(ShadowDifference).where(ShadowDifference.report_id == report_id))
        report.status = RUNNING
        report.started_at = report.heartbeat_at = datetime.now(UTC)
        report.attempts += 1
        return _Claimed(
            report_id=report.id,
            claimed_at=report.started_at,
            organization_id=report.organization_id,
            workflow_id=report.workflow_id,
            current=Definition.from_dict(report.current_definition),
            candidate=Definition.from_dict(report.candidate),
            selection=Selection.from_dict(report.selection),
        )


def _finish(
    session_factory: sessionmaker[Session],
    claimed: _Claimed,
    status: str,
    summary: dict[str, Any] | None,
    error: str | None,
) -> None:
    with session_factory() as session, session.begin():
        report = _owned(session, claimed)
        report.status = status
        report.summary = summary
        report.error_message = error
        report.completed_at = datetime.now(UTC)


def _owned(session: Session, claimed: _Claimed) -> ShadowReport:
    """The report, locked, if this run's claim still holds; else Superseded."""
    report = session.get(ShadowReport, claimed.report_id, with_for_update=True)
    if report is None or report.started_at != claimed.claimed_at or report.status != RUNNING:
        raise Superseded(str(claimed.report_id))
    return report


def _replay(
    session_factory: sessionmaker[Session],
    claimed: _Claimed,
    renderer: TemplateRenderer,
    now: datetime,
) -> ShadowSummary:
    summary = ShadowSummary()
    seq = 0
    with session_factory() as reader:
        rules = _rules(reader, claimed.organization_id)
        shadow = ShadowRun(
            claimed.candidate,
            now=now,
            renderer=renderer,
            rules=rules.get,
            later_events=lambda event_type, after, until: _later_events(
                reader, claimed.organization_id, event_type, after, until
            ),
        )
        patterns = (claimed.current.trigger.event, claimed.candidate.trigger.event)
        statement = events_statement(claimed.organization_id, patterns, claimed.selection)
        for chunk in _chunks(reader, statement):
            differences: list[dict[str, Any]] = []
            for event in _with_recorded_runs(reader, claimed, chunk):
                comparison = shadow.compare(event)
                if comparison is None:
                    continue
                summary.add(comparison)
                if comparison.differs:
                    seq += 1
                    differences.append(_difference_row(claimed, seq, comparison))
            _write(session_factory, claimed, differences)
    return summary


def _chunks(session: Session, statement: Select[Any]) -> Iterator[Sequence[Any]]:
    """The rows in chunks of CHUNK, from a server-side cursor."""
    result = session.execute(statement.execution_options(yield_per=CHUNK))
    yield from result.partitions()


def _with_recorded_runs(
    session: Session, claimed: _Claimed, rows: Sequence[Any]
) -> Iterator[RecordedEvent]:
    runs = _recorded_runs(session, claimed, _started_executions(claimed.workflow_id, rows))
    for row in rows:
        yield RecordedEvent(
            event_id=str(row.id),
            event_type=row.event_type,
            payload=row.payload,
            received_at=row.received_at,
            recorded=runs.get(row.id),
        )


def _started_executions(workflow_id: str, rows: Sequence[Any]) -> list[uuid.UUID]:
    """The executions of this workflow the events started, as each event keeps them
    (`triggered_workflows` beside `execution_ids`): found by primary key after."""
    return [
        uuid.UUID(str(execution_id))
        for row in rows
        for started, execution_id in zip(
            row.triggered_workflows or [], row.execution_ids or [], strict=False
        )
        if started == workflow_id
    ]


def _recorded_runs(
    session: Session, claimed: _Claimed, execution_ids: list[uuid.UUID]
) -> dict[uuid.UUID, RecordedRun]:
    """What the workflow's executions did with these events: four queries a chunk."""
    if not execution_ids:
        return {}
    loads = claimed.candidate.context_load
    # The context only when the candidate loads resources (it can be large).
    context = Execution.context if loads else null().label("context")
    executions = session.execute(
        select(
            Execution.id,
            Execution.trigger_event_id,
            Execution.workflow_version,
            Execution.status,
            Execution.result,
            context,
        )
        .where(
            Execution.id.in_(execution_ids),
            Execution.organization_id == claimed.organization_id,
            Execution.workflow_id == claimed.workflow_id,
        )
        .order_by(Execution.created_at)
    ).all()
    if not executions:
        return {}
    ids = [row.id for row in executions]
    steps: dict[uuid.UUID, list[RecordedStep]] = {i: [] for i in ids}
    for row in session.execute(
        select(
            StepRun.execution_id,
            StepRun.step_id,
            StepRun.step_type,
            StepRun.attempt,
            StepRun.status,
            StepRun.output,
        )
        .where(StepRun.execution_id.in_(ids), StepRun.branch_key == "")
        .order_by(StepRun.execution_id, StepRun.created_at, StepRun.attempt_group, StepRun.attempt)
    ):
        steps[row.execution_id].append(
            RecordedStep(row.step_id, row.step_type, row.attempt, row.status, row.output)
        )
    approvals: dict[uuid.UUID, dict[str, str]] = {i: {} for i in ids}
    for row in session.execute(
        select(Approval.execution_id, Approval.step_id, Approval.status)
        .where(Approval.execution_id.in_(ids))
        .order_by(Approval.attempt_group)
    ):
        approvals[row.execution_id][row.step_id] = row.status
    waits = _ended_waits(session, ids)
    # The latest execution wins if an event ever started the workflow twice.
    return {
        row.trigger_event_id: RecordedRun(
            execution_id=str(row.id),
            workflow_version=row.workflow_version,
            status=row.status,
            result=row.result,
            steps=tuple(steps[row.id]),
            approvals=approvals[row.id],
            waits=waits.get(row.id, {}),
            loaded=recorded_loads(row.context, loads) if row.context else {},
        )
        for row in executions
    }


def _ended_waits(
    session: Session, execution_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Mapping[str, Any] | None]]:
    """Each ended wait's answer: the payload of the event that ended it, ``{}`` for
    a time wait that ran out, None for an event wait that timed out."""
    rows = session.execute(
        select(Wait.execution_id, Wait.step_id, Wait.status, Event.payload)
        .outerjoin(Event, Event.id == Wait.resolved_event_id)
        .where(Wait.execution_id.in_(execution_ids), Wait.status.in_(("resolved", "timed_out")))
        .order_by(Wait.attempt_group)
    ).all()
    answers: dict[uuid.UUID, dict[str, Mapping[str, Any] | None]] = {}
    for row in rows:
        answer = None if row.status == "timed_out" else (row.payload or {})
        answers.setdefault(row.execution_id, {})[row.step_id] = answer
    return answers


def _later_events(
    session: Session,
    organization_id: uuid.UUID,
    event_type: str,
    after: datetime,
    until: datetime | None,
) -> Sequence[Mapping[str, Any]]:
    """The payloads of the events of this type received after `after` (and until
    `until`), oldest first: what a new wait step of the candidate would have seen."""
    statement = select(Event.payload).where(
        Event.organization_id == organization_id,
        Event.event_type == event_type,
        Event.received_at > after,
    )
    if until is not None:
        statement = statement.where(Event.received_at <= until)
    statement = statement.order_by(Event.received_at, Event.id).limit(LATER_EVENTS_LIMIT)
    return session.scalars(statement).all()


def _rules(session: Session, organization_id: uuid.UUID) -> dict[str, Sequence[Mapping[str, Any]]]:
    rows = session.execute(
        select(Rule.rule_id, Rule.conditions).where(
            Rule.organization_id == organization_id, Rule.enabled.is_(True)
        )
    )
    return {row.rule_id: list(row.conditions) for row in rows}


def _write(
    session_factory: sessionmaker[Session], claimed: _Claimed, rows: list[dict[str, Any]]
) -> None:
    """A chunk's differences, written only while this run's claim holds."""
    with session_factory() as session, session.begin():
        _owned(session, claimed).heartbeat_at = datetime.now(UTC)
        if rows:
            session.execute(insert(ShadowDifference), rows)


def _difference_row(claimed: _Claimed, seq: int, comparison: Comparison) -> dict[str, Any]:
    return {
        "report_id": claimed.report_id,
        "seq": seq,
        "organization_id": claimed.organization_id,
        "event_id": uuid.UUID(comparison.event_id),
        "comparison": comparison.to_dict(),
    }


def _type_filter(patterns: Iterable[str | None]) -> Any:
    """SQL for "the type matches one of these globs"; None when one cannot be said in
    LIKE (a character class): then every type is read and the engine decides."""
    clauses = []
    for pattern in patterns:
        if not pattern:  # a trigger that is not an event's starts on no event
            continue
        if "[" in pattern:
            return None
        if not any(c in pattern for c in "*?"):
            clauses.append(Event.event_type == pattern)
            continue
        escaped = re.sub(r"([\\%_])", r"\\\1", pattern)
        clauses.append(Event.event_type.like(escaped.replace("*", "%").replace("?", "_")))
    return or_(*clauses) if clauses else false()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))
