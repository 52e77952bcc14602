"""workflows.relay_outbox: publish tickets that are due and still unconsumed.

Runs every second or two (beat). A ticket is due when its `available_at` has
passed: a delayed retry whose backoff elapsed, or an immediate dispatch that
nobody consumed within the grace period (its publish was lost, or the broker
lost the message). Rows are claimed with SKIP LOCKED, so several relays (or a
step consuming the ticket right now) never publish the same row twice in one
round, and each published row is re-armed for a growing grace period.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from models.execution import DispatchOutbox
from tasks import runtime
from tasks.dispatch import REDELIVERY_GRACE, Publisher, Ticket

BATCH_SIZE = 500
MAX_BACKOFF_FACTOR = 16
WORKER_TYPE = "outbox_relay"


def relay_due_tickets(
    rt: runtime.Runtime, publisher: Publisher, now: datetime | None = None
) -> int:
    """Publish every due ticket (one batch); returns how many were published."""
    now = now or datetime.now(UTC)
    with rt.unit_of_work() as uow:
        rows = uow.session.scalars(
            select(DispatchOutbox)
            .where(DispatchOutbox.available_at <= now)
            .order_by(DispatchOutbox.available_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).all()
        tickets = [Ticket.from_row(row) for row in rows]
        for row in rows:
            # Back off: a ticket stuck behind a long queue must not be
            # duplicated every period (15 s, 30 s, 1 min, ... 4 min).
            row.available_at = now + REDELIVERY_GRACE * min(2**row.attempts, MAX_BACKOFF_FACTOR)
            row.attempts += 1
        uow.commit()
    return publisher.publish(tickets)
