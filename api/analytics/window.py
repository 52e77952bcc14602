"""The time window and bucket vocabulary analytics queries are built from.

Closed sets only: a request names a key, the SQL receives the mapped value as
a bound parameter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

TIME_RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
# interval -> bucket width; the unit name is also date_trunc's field name.
UNITS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# Bounded bucket counts: at most 169 buckets (7d by hour).
INTERVALS_FOR: dict[str, tuple[str, ...]] = {
    "1h": ("minute", "hour"),
    "24h": ("hour", "day"),
    "7d": ("hour", "day"),
    "30d": ("day",),
}
DEFAULT_INTERVAL: dict[str, str] = {"1h": "minute", "24h": "hour", "7d": "hour", "30d": "day"}


@dataclass(frozen=True)
class Window:
    """The executions an analytics request is about: one organization, `[start, end]`."""

    organization_id: uuid.UUID
    time_range: str
    start: datetime
    end: datetime
    interval: str
    workflow_id: str | None = None

    @classmethod
    def ending(cls, now: datetime, organization_id: uuid.UUID, query: dict[str, Any]) -> Window:
        time_range = query["time_range"]
        return cls(
            organization_id=organization_id,
            time_range=time_range,
            start=now - TIME_RANGES[time_range],
            end=now,
            interval=query.get("interval") or DEFAULT_INTERVAL[time_range],
            workflow_id=query.get("workflow_id"),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "time_range": self.time_range,
            "start": self.start,
            "end": self.end,
            "workflow_id": self.workflow_id,
        }
