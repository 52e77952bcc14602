"""Cron schedules: 5-field, 6-field with leading seconds, or ``@descriptors``.

Times go in and come out timezone-aware; results are in UTC. The schedule's
IANA timezone decides what "0 9 * * *" means (09:00 local, DST included).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
MAX_RUNS = 1000


def timezone_problem(tz: str) -> str | None:
    if not isinstance(tz, str) or not tz:
        return "timezone must be an IANA name such as 'UTC' or 'Europe/Paris'"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone {tz!r}; use an IANA name such as 'Europe/Paris'"
    return None


def validate_cron(expr: str, tz: str = "UTC") -> list[str]:
    """Problems with a cron expression and its timezone (empty when both are fine)."""
    problems = []
    if not isinstance(expr, str) or not expr.strip():
        problems.append("cron must be a non-empty string such as '0 */6 * * *'")
    elif expr.strip().startswith("@"):
        if expr.strip().lower() not in DESCRIPTORS:
            known = ", ".join(sorted(DESCRIPTORS))
            problems.append(f"unknown cron descriptor {expr!r}; use one of {known}")
    else:
        fields = expr.split()
        if len(fields) not in (5, 6):
            problems.append(
                f"cron {expr!r} has {len(fields)} fields; expected 5 (minute hour day month"
                " weekday) or 6 (second first)"
            )
        elif not croniter.is_valid(expr, second_at_beginning=len(fields) == 6):
            problems.append(f"invalid cron expression {expr!r}")
    tz_problem = timezone_problem(tz)
    if tz_problem is not None:
        problems.append(tz_problem)
    return problems


def next_runs(expr: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` due times strictly after ``after``, in UTC."""
    _check(expr, tz, after)
    count = min(max(count, 0), MAX_RUNS)
    schedule = _iterator(expr, after.astimezone(ZoneInfo(tz)))
    return [schedule.get_next(datetime).astimezone(UTC) for _ in range(count)]


def latest_due(expr: str, tz: str, after: datetime, now: datetime) -> datetime | None:
    """The latest due time in ``(after, now]``, or None.

    The scheduler fires this one run, however many were missed while it was
    down (SPEC §2: "missed runs while down fire once").
    """
    _check(expr, tz, after)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    previous: datetime = _iterator(expr, now.astimezone(ZoneInfo(tz)), is_prev=True).get_prev(
        datetime
    )
    # croniter's get_prev is strictly before its start; a run due exactly now counts.
    following: datetime = _iterator(expr, previous).get_next(datetime)
    if following <= now:
        previous = following
    previous = previous.astimezone(UTC)
    return previous if previous > after else None


def _iterator(expr: str, start: datetime, *, is_prev: bool = False) -> croniter:
    six_fields = not expr.strip().startswith("@") and len(expr.split()) == 6
    return croniter(expr, start, second_at_beginning=six_fields, is_prev=is_prev)


def _check(expr: str, tz: str, after: datetime) -> None:
    problems = validate_cron(expr, tz)
    if problems:
        raise ValueError("; ".join(problems))
    if after.tzinfo is None:
        raise ValueError("times must be timezone-aware")
