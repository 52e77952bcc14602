"""The two streams: one execution's steps and states, and an organization's executions.

Both subscribe to the process's feed before they read their starting state from
Postgres, then follow the feed; a LOST from the feed, like a client's
Last-Event-ID, means "re-read from Postgres, then continue live".

Event ids:
- one execution: `<version>.<steps_at>` on `execution` events, `steps_at` being
  the newest step-run change sent so far (microseconds since the epoch). A
  resume re-sends the execution's state if its version is newer, and every step
  run changed since `steps_at` minus RESUME_OVERLAP (a step committed late with
  an earlier timestamp is not skipped; a client may see a step event twice and
  keeps the last by step-run id and status).
- the organization's list: `<updated_at>` of the change (microseconds). A
  resume re-sends the current state of every matching execution changed since,
  minus RESUME_OVERLAP; `version` says which is newer.
"""

from __future__ import annotations

import queue
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.streams.feed import Change, ExecutionFeed, Lost, Subscription
from api.streams.slots import StreamSlot
from api.streams.sse import HEARTBEAT, frame, retry_frame
from engine.state import FINISHED_STATES
from models.execution import Execution, StepRun

RESUME_OVERLAP = timedelta(seconds=60)
RECONNECT_MILLISECONDS = 2000
# The list stream remembers the last version it sent of this many executions.
_REMEMBERED = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXECUTION_CURSOR = re.compile(r"^(\d{1,12})(?:\.(\d{1,20}))?$")
_LIST_CURSOR = re.compile(r"^\d{1,20}$")
_FINISHED = frozenset(str(status) for status in FINISHED_STATES)
EXPIRED = frame("expired", {"reason": "the access token expired: reconnect with a fresh one"})


class BadCursor(ValueError):
    """A Last-Event-ID this stream did not send."""


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@dataclass
class Stream:
    """What both streams share: the feed subscription, the slot, the heartbeat."""

    sessions: sessionmaker[Session]
    feed: ExecutionFeed
    subscription: Subscription
    slot: StreamSlot
    heartbeat_seconds: float
    # When the caller's access token expires (None: an API key). The stream ends
    # then (`event: expired`): a client reconnects with a fresh token, so a stream
    # never outlives the credentials that opened it.
    expires_at: datetime | None = None
    closed: bool = False

    def next_item(self) -> Change | Lost | None:
        """The next change (or LOST); None after a heartbeat's worth of silence."""
        try:
            return self.subscription.queue.get(timeout=self._wait_seconds())
        except queue.Empty:
            self.slot.refresh()
            return None

    def expired(self) -> bool:
        return self.expires_at is not None and datetime.now(UTC) >= self.expires_at

    def _wait_seconds(self) -> float:
        if self.expires_at is None:
            return self.heartbeat_seconds
        left = (self.expires_at - datetime.now(UTC)).total_seconds()
        return max(0.0, min(self.heartbeat_seconds, left))

    def close(self) -> None:
        """Idempotent: the body's end and the response's close both call it."""
        if self.closed:
            return
        self.closed = True
        self.feed.unsubscribe(self.subscription)
        self.slot.release()


# --- one execution ----------------------------------------------------------------


@dataclass
class _ExecutionCursor:
    version: int = 0
    steps_at: int | None = None  # None: no step sent yet, read them all
    sent: set[tuple[str, str]] = field(default_factory=set)


def parse_execution_cursor(last_event_id: str | None) -> _ExecutionCursor:
    if not last_event_id:
        return _ExecutionCursor()
    match = _EXECUTION_CURSOR.match(last_event_id.strip())
    if match is None:
        raise BadCursor("Last-Event-ID must be `<version>` or `<version>.<steps_at>`")
    steps_at = int(match.group(2)) if match.group(2) else None
    return _ExecutionCursor(version=int(match.group(1)), steps_at=steps_at)


def execution_events(
    stream: Stream, execution_id: uuid.UUID, cursor: _ExecutionCursor
) -> Iterator[bytes]:
    """step and execution events until the execution finishes, then `end`."""
    try:
        yield retry_frame(RECONNECT_MILLISECONDS)
        finished = yield from _catch_up_execution(stream.sessions, execution_id, cursor)
        while not finished:
            item = stream.next_item()
            if stream.expired():
                yield EXPIRED
                return
            if item is None:
                yield HEARTBEAT
            elif isinstance(item, Lost) or item.version > cursor.version:
                finished = yield from _catch_up_execution(stream.sessions, execution_id, cursor)
    finally:
        stream.close()


def _catch_up_execution(
    sessions: sessionmaker[Session], execution_id: uuid.UUID, cursor: _ExecutionCursor
) -> Generator[bytes, None, bool]:
    """Whatever changed since the cursor, from Postgres; True once the stream is over."""
    with sessions() as session:
        execution = session.get(Execution, execution_id)
        steps = _changed_steps(session, execution_id, cursor.steps_at)
    for step, changed_at in steps:
        key = (str(step.id), step.status)
        if key not in cursor.sent:
            cursor.sent.add(key)
            yield frame("step", _step_data(step))
        cursor.steps_at = max(cursor.steps_at or 0, micros(changed_at))
    if execution is None:
        yield frame("end", {"execution_id": str(execution_id), "reason": "deleted"})
        return True
    if execution.version > cursor.version:
        cursor.version = execution.version
        event_id = f"{execution.version}.{cursor.steps_at or 0}"
        yield frame("execution", _execution_data(execution), event_id)
    if execution.status in _FINISHED:
        yield frame("end", {"execution_id": str(execution_id), "status": execution.status})
        return True
    return False


def _changed_steps(
    session: Session, execution_id: uuid.UUID, steps_at: int | None
) -> list[tuple[StepRun, datetime]]:
    changed_at = func.greatest(StepRun.created_at, StepRun.started_at, StepRun.completed_at)
    statement = select(StepRun, changed_at).where(StepRun.execution_id == execution_id)
    if steps_at is not None:
        statement = statement.where(changed_at >= from_micros(steps_at) - RESUME_OVERLAP)
    statement = statement.order_by(changed_at, StepRun.created_at, StepRun.id)
    return [(row[0], row[1]) for row in session.execute(statement).all()]


def _step_data(step: StepRun) -> dict[str, Any]:
    return {
        "id": str(step.id),
        "execution_id": str(step.execution_id),
        "step_id": step.step_id,
        "step_type": step.step_type,
        "branch_key": step.branch_key,
        "attempt_group": step.attempt_group,
        "attempt": step.attempt,
        "status": step.status,
        "error_code": step.error_code,
        "error_message": step.error_message,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
        "duration_ms": step.duration_ms,
    }


def _execution_data(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": str(execution.id),
        "workflow_id": execution.workflow_id,
        "version": execution.version,
        "status": execution.status,
        "current_step_id": execution.current_step_id,
        "result": execution.result,
        "error_type": execution.error_type,
        "error_message": execution.error_message,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
        "updated_at": execution.updated_at,
    }


# --- an organization's executions -------------------------------------------------


def parse_list_cursor(last_event_id: str | None) -> int | None:
    if not last_event_id:
        return None
    if not _LIST_CURSOR.match(last_event_id.strip()):
        raise BadCursor("Last-Event-ID must be the `<updated_at>` id this stream sent")
    return int(last_event_id.strip())


def list_filter(filters: Mapping[str, Any]) -> Callable[[Change], bool]:
    workflow_id, status = filters.get("workflow_id"), filters.get("status")

    def accepts(change: Change) -> bool:
        return (workflow_id is None or change.workflow_id == workflow_id) and (
            status is None or change.status == status
        )

    return accepts


def execution_list_events(
    stream: Stream,
    organization_id: uuid.UUID,
    filters: Mapping[str, Any],
    since: int | None,
) -> Iterator[bytes]:
    """execution events of the organization's matching executions, until the client leaves."""
    sent: OrderedDict[str, int] = OrderedDict()
    last_at = since
    try:
        yield retry_frame(RECONNECT_MILLISECONDS)
        if since is not None:
            last_at = yield from _catch_up_list(stream, organization_id, filters, since, sent)
        while True:
            item = stream.next_item()
            if stream.expired():
                yield EXPIRED
                return
            if item is None:
                yield HEARTBEAT
            elif isinstance(item, Lost):
                start = last_at if last_at is not None else micros(datetime.now(UTC))
                last_at = yield from _catch_up_list(stream, organization_id, filters, start, sent)
            elif _is_new(sent, item.execution_id, item.version):
                at = micros(datetime.fromisoformat(item.at))
                last_at = max(last_at or 0, at)
                yield frame("execution", _change_data(item), str(at))
    finally:
        stream.close()


def _catch_up_list(
    stream: Stream,
    organization_id: uuid.UUID,
    filters: Mapping[str, Any],
    since: int,
    sent: OrderedDict[str, int],
) -> Generator[bytes, None, int]:
    statement = select(Execution).where(
        Execution.organization_id == organization_id,
        Execution.updated_at >= from_micros(since) - RESUME_OVERLAP,
    )
    if filters.get("workflow_id"):
        statement = statement.where(Execution.workflow_id == filters["workflow_id"])
    if filters.get("status"):
        statement = statement.where(Execution.status == filters["status"])
    statement = statement.order_by(Execution.updated_at, Execution.id)
    last_at = since
    with stream.sessions() as session:
        # Streamed: a long outage may have touched many executions.
        for execution in session.scalars(statement.execution_options(yield_per=500)):
            at = micros(execution.updated_at)
            last_at = max(last_at, at)
            if _is_new(sent, str(execution.id), execution.version):
                yield frame("execution", _row_data(execution), str(at))
    return last_at


def _is_new(sent: OrderedDict[str, int], execution_id: str, version: int) -> bool:
    if sent.get(execution_id, 0) >= version:
        return False
    sent[execution_id] = version
    sent.move_to_end(execution_id)
    if len(sent) > _REMEMBERED:
        sent.popitem(last=False)
    return True


def _change_data(change: Change) -> dict[str, Any]:
    return {
        "execution_id": change.execution_id,
        "workflow_id": change.workflow_id,
        "version": change.version,
        "status": change.status,
        "current_step_id": change.current_step_id,
        "updated_at": change.at,
    }


def _row_data(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": str(execution.id),
        "workflow_id": execution.workflow_id,
        "version": execution.version,
        "status": execution.status,
        "current_step_id": execution.current_step_id,
        "updated_at": execution.updated_at.isoformat(),
    }
