"""The API side of dispatching: one Celery publisher per web process, used after commits."""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app

from api.services import settings
from models.db import UnitOfWork
from models.execution import DispatchOutbox
from tasks.dispatch import Publisher, is_immediate

_EXTENSION = "iw-publisher"


def publisher() -> Publisher:
    found = current_app.extensions.get(_EXTENSION)
    if found is None:
        found = Publisher.for_broker(
            settings().broker_url, celery_metrics=settings().celery_metrics_enabled
        )
        current_app.extensions[_EXTENSION] = found
    return found


def publish_after_commit(uow: UnitOfWork, tickets: Iterable[DispatchOutbox]) -> None:
    """Publish the tickets once `uow` commits; a failed publish is left to the relay."""
    rows = list(tickets)
    if not rows:
        return
    sender = publisher()
    uow.after_commit(lambda: _publish(sender, rows))


def publish_now(tickets: Iterable[DispatchOutbox]) -> None:
    """Publish tickets whose rows are committed already; a failure is left to the relay."""
    rows = list(tickets)
    if rows:
        _publish(publisher(), rows)


def _publish(sender: Publisher, rows: list[DispatchOutbox]) -> None:
    sender.publish_rows(row for row in rows if is_immediate(row))
