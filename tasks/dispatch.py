"""The dispatch interface: outbox tickets written with a state change, published after commit.

A ticket is a `dispatch_outbox` row naming one step attempt to run. It is
inserted in the same transaction as the state change that makes the step due,
published to Celery only after that commit, and deleted by the step task in
the transaction that consumes it. A ticket that still exists at its
`available_at` is (re)published by the relay: that covers a publish lost
between commit and broker, a message lost by the broker, and delayed retries
(whose `available_at` is their due time). Publishing is therefore best effort;
the outbox is the guarantee.

This module is what the API may import (SPEC layering): it knows task names
and message shapes, never task bodies.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from celery import Celery, current_app
from celery.signals import after_task_publish
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from engine.definition import Definition, RunMode, Step
from models.execution import DispatchOutbox
from models.rows import InsertBatch
from tasks import broker

log = structlog.get_logger(__name__)

RUN_STEP = "workflows.run_step"
RELAY_OUTBOX = "workflows.relay_outbox"
SWEEP_STUCK = "workflows.sweep_stuck"
TASK_NAMES = (RUN_STEP, RELAY_OUTBOX, SWEEP_STUCK)
QUEUE = "workflows"

# A published ticket not consumed within this time is published again by the relay.
REDELIVERY_GRACE = timedelta(seconds=15)
# Steps run at most this long (SPEC: step `timeout`); the default applies when a
# step names none.
DEFAULT_STEP_LIMIT = timedelta(minutes=5)
MAX_STEP_LIMIT = timedelta(hours=1)
# Celery's soft limit only backs up our own deadlines (HTTP timeouts, the step budget).
SOFT_LIMIT_GRACE_SECONDS = 5
HARD_LIMIT_GRACE_SECONDS = 15


def publisher_config(broker_url: str) -> dict[str, Any]:
    """Settings every process that publishes or consumes must agree on."""
    return {
        "broker_url": broker_url,
        **_broker_transport(broker_url),
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": QUEUE,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        # No acknowledgement bookkeeping in Redis (kombu's `unacked` hash, restored
        # after a visibility timeout): every message names a ticket in Postgres, and
        # the relay publishes a ticket again when its message is lost, so a worker
        # keeps the messages it took in memory only. That spares its main process
        # two Redis transactions a message (about a third of its CPU a step). A pool
        # process killed mid-task still has its message requeued at once from that
        # memory (acks_late + task_reject_on_worker_lost); the messages of a whole
        # worker killed go with it, and their tickets are relayed (failure-modes.md).
        "broker_transport_options": {"ack_emulation": False},
        # Publishing happens after a commit: fail fast, the relay re-publishes.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    }


def _broker_transport(broker_url: str) -> dict[str, Any]:
    """tasks.broker's transport (one Redis client per channel) for plain redis:// URLs."""
    if urlsplit(broker_url).scheme != "redis":
        return {}
    return {"broker_transport": broker.TRANSPORT}


@dataclass(frozen=True)
class Ticket:
    """One dispatch: the outbox row id and the step attempt it names. `message` is what
    the step task receives and `parse` reads it back; a stored ticket's payload is
    read the same way (`from_row`): the message's shape is written down here only."""

    outbox_id: int
    execution_id: uuid.UUID
    step_id: str
    branch_key: str = ""
    attempt_group: int = 1
    attempt: int = 1
    limit_seconds: float = DEFAULT_STEP_LIMIT.total_seconds()
    # How the step runs (engine.definition.RunMode); None on a ticket stored before
    # tickets carried it (or naming a mode this version does not know): the step
    # task then asks the definition.
    mode: RunMode | None = None
    # The execution row as the previous step left it (tasks.locking.snapshot).
    snapshot: dict[str, Any] | None = None
    sent_at: float | None = None  # when it was published (a parsed message only)

    @classmethod
    def parse(cls, message: Mapping[str, Any]) -> Ticket:
        return cls(
            outbox_id=int(message["outbox_id"]),
            execution_id=_uuid(message["execution_id"]),
            step_id=str(message["step_id"]),
            branch_key=str(message.get("branch_key") or ""),
            attempt_group=int(message.get("attempt_group", 1)),
            attempt=int(message.get("attempt", 1)),
            limit_seconds=float(message.get("limit_seconds", DEFAULT_STEP_LIMIT.total_seconds())),
            mode=_mode(message.get("mode")),
            snapshot=message.get("snapshot"),
            sent_at=message.get("sent_at"),
        )

    @classmethod
    def from_row(cls, row: DispatchOutbox) -> Ticket:
        return cls.parse({**row.payload, "outbox_id": row.id, "execution_id": row.execution_id})

    def describe(self) -> str:
        step = f"{self.step_id}/{self.branch_key}" if self.branch_key else self.step_id
        return (
            f"execution {self.execution_id} step {step}"
            f" attempt {self.attempt_group}.{self.attempt} (ticket {self.outbox_id})"
        )

    def message(self) -> dict[str, Any]:
        return {
            "outbox_id": self.outbox_id,
            "execution_id": str(self.execution_id),
            "step_id": self.step_id,
            "branch_key": self.branch_key,
            "attempt_group": self.attempt_group,
            "attempt": self.attempt,
            "limit_seconds": self.limit_seconds,
            "mode": self.mode.value if self.mode is not None else None,
            # For workflow_dispatch_latency_seconds (committed -> started).
            "sent_at": time.time(),
            **({"snapshot": self.snapshot} if self.snapshot is not None else {}),
        }

    @property
    def attempt_key(self) -> dict[str, Any]:
        """The execution and step-run row this ticket names (tasks.locking.lock_execution)."""
        return {
            "execution_id": self.execution_id,
            "step_id": self.step_id,
            "branch_key": self.branch_key,
            "attempt_group": self.attempt_group,
            "attempt": self.attempt,
        }

    @property
    def lock_key(self) -> str:
        parts = (self.execution_id, self.step_id, self.branch_key, self.attempt_group, self.attempt)
        return ":".join(str(part) for part in parts)


def _uuid(value: Any) -> uuid.UUID:
    """A message's id (text), or a stored row's (already a UUID: not parsed again)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _mode(value: Any) -> RunMode | None:
    try:
        return RunMode(value) if value else None
    except ValueError:
        return None


def step_limit(timeout: timedelta | None) -> timedelta:
    """How long one attempt of a step may run: its timeout, capped."""
    return min(timeout or DEFAULT_STEP_LIMIT, MAX_STEP_LIMIT)


def ticket_payload(
    definition: Definition,
    step: Step,
    *,
    branch_key: str = "",
    attempt_group: int = 1,
    attempt: int = 1,
    delayed: bool,
) -> dict[str, Any]:
    """What a ticket tells the step task, besides its execution and its id."""
    return {
        "step_id": step.id,
        "branch_key": branch_key,
        "attempt_group": attempt_group,
        "attempt": attempt,
        "limit_seconds": step_limit(step.timeout).total_seconds(),
        # A backoff: only the relay publishes it, once due.
        "delayed": delayed,
        # How the step runs (tasks.steprun): said once, by the definition.
        "mode": definition.run_mode(step, branch_key).value,
    }


def new_ticket(
    *,
    organization_id: uuid.UUID,
    execution_id: uuid.UUID,
    definition: Definition,
    step: Step,
    now: datetime,
    attempt_group: int = 1,
    attempt: int = 1,
    branch_key: str = "",
    due_at: datetime | None = None,
) -> DispatchOutbox:
    """A ticket row, not yet in any session (tasks.transition.ticket_step adds one to a
    session; insert_tickets writes many at once)."""
    return DispatchOutbox(
        organization_id=organization_id,
        execution_id=execution_id,
        task_name=RUN_STEP,
        payload=ticket_payload(
            definition,
            step,
            branch_key=branch_key,
            attempt_group=attempt_group,
            attempt=attempt,
            delayed=due_at is not None,
        ),
        available_at=due_at if due_at is not None else now + REDELIVERY_GRACE,
    )


def insert_tickets(
    session: Session | Connection,
    rows: list[DispatchOutbox],
    *,
    batch: InsertBatch | None = None,
) -> str | None:
    """Insert new tickets in one statement, bypassing the unit of work, and give each
    row its id (the rows stay outside the session: nothing reads them back).
    `batch` carries INSERTs to send ahead of the tickets' in the same round trip.
    At most one new ticket per execution, so the execution id pairs ids with rows.
    Returns the tickets' xmin (None without tickets): the id of the transaction that
    wrote them, and so also `batch`'s rows, sent in the same round trip."""
    if len({row.execution_id for row in rows}) != len(rows):
        raise ValueError("insert_tickets takes at most one ticket per execution")
    batch = batch if batch is not None else InsertBatch()
    batch.add(
        DispatchOutbox,
        [
            {
                "organization_id": row.organization_id,
                "execution_id": row.execution_id,
                "task_name": row.task_name,
                "payload": row.payload,
                "available_at": row.available_at,
            }
            for row in rows
        ],
        returning=("id", "execution_id", "xmin::text"),
    )
    written = batch.send(session)
    ids = {execution_id: row_id for row_id, execution_id, _ in written}
    for row in rows:
        row.id = ids[row.execution_id]
    return str(written[0][2]) if written else None


def is_immediate(row: DispatchOutbox) -> bool:
    """Whether a ticket is published right after its commit (a backoff is not)."""
    return not row.payload.get("delayed", False)


class Publisher:
    """Sends tickets to the broker by task name; never imports task bodies."""

    def __init__(self, celery_app: Celery) -> None:
        self._app = celery_app
        # Step messages, the hot path, skip send_task on the Redis transport.
        self._sender = (
            broker.ChannelSender(celery_app)
            if celery_app.conf.broker_transport == broker.TRANSPORT
            else None
        )

    @classmethod
    def for_broker(cls, broker_url: str, *, celery_metrics: bool = True) -> Publisher:
        app = Celery("iw-publisher", set_as_current=False)
        app.conf.update(publisher_config(broker_url))
        if celery_metrics:
            connect_publish_metrics()
        return cls(app)

    @classmethod
    def for_current_app(cls) -> Publisher:
        return cls(current_app)

    def publish(self, tickets: Iterable[Ticket]) -> int:
        """Publish the tickets (several in one pipelined round trip where the transport
        allows: a fan-out, a batch of events, the relay); a broker failure is logged,
        not raised (the relay publishes what is lost)."""
        items = list(tickets)
        if self._sender is not None and len(items) > 1:
            return self._publish_together(items)
        published = 0
        for ticket in items:
            try:
                self._publish_step(ticket)
            except Exception as exc:  # any broker failure: the ticket stays for the relay
                log.warning("publish_failed", outbox_id=ticket.outbox_id, error=repr(exc))
                continue
            published += 1
        return published

    def _publish_together(self, tickets: list[Ticket]) -> int:
        assert self._sender is not None
        try:
            self._sender.send_many(
                RUN_STEP, QUEUE, [(ticket.message(), _options(ticket)) for ticket in tickets]
            )
        except Exception as exc:  # any broker failure: the tickets stay for the relay
            log.warning("publish_failed", tickets=len(tickets), error=repr(exc))
            return 0
        return len(tickets)

    def _publish_step(self, ticket: Ticket) -> None:
        options = _options(ticket)
        if self._sender is not None:
            self._sender.send(RUN_STEP, QUEUE, ticket.message(), **options)
        else:
            self._app.send_task(RUN_STEP, kwargs=ticket.message(), queue=QUEUE, **options)

    def publish_rows(self, rows: Iterable[DispatchOutbox]) -> int:
        return self.publish(Ticket.from_row(row) for row in rows)

    def send(self, task_name: str, kwargs: Mapping[str, Any] | None = None) -> None:
        self._app.send_task(task_name, kwargs=dict(kwargs or {}), queue=QUEUE)


def _options(ticket: Ticket) -> broker.Options:
    limit = ticket.limit_seconds
    return {
        # What Flower and the logs show; given, Celery skips its generic
        # saferepr of the arguments (~8% of a publish).
        "argsrepr": "()",
        "kwargsrepr": ticket.describe(),
        "soft_time_limit": limit + SOFT_LIMIT_GRACE_SECONDS,
        "time_limit": limit + HARD_LIMIT_GRACE_SECONDS,
    }


def _record_sent(
    sender: str | None = None, headers: Any = None, routing_key: str = "", **_: Any
) -> None:
    from monitoring import metrics

    name = sender or (headers or {}).get("task") or "unknown"
    metrics.record_celery_task_event("sent", name, socket.gethostname(), routing_key or QUEUE)


def connect_publish_metrics() -> None:
    """Count celery_task_sent_total in whichever process publishes (API, worker, beat).

    Lives here rather than in workers/ because the API publishes too and must
    not import workers; `dispatch_uid` makes repeated calls harmless.
    """
    after_task_publish.connect(_record_sent, weak=False, dispatch_uid="iw-celery-sent")
