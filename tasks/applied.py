"""What applying a transition leaves to do once its transaction committed.

The application services (a step's transition, a wake-up, an approval's
decision) return an `Applied`: the tickets to publish and the metrics to record
after the commit, so a transaction that rolls back publishes nothing. The API
and the task bodies both act on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from models.execution import DispatchOutbox


@dataclass
class Applied:
    label: str
    tickets: list[DispatchOutbox] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def record_metrics(applied: Applied) -> None:
    for callback in applied.after_commit:
        callback()
