"""Durations as workflow authors write them: ``500ms 30s 5m 1h30m 2d``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_BARE_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Longer than any sane step or wait, short enough that datetime arithmetic
# on it never overflows.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse ``"1h30m"``-style text, or a bare number of seconds.

    Units may be combined (``"1h30m"``, ``"2d12h"``); each part is a
    non-negative number followed by ``ms``, ``s``, ``m``, ``h`` or ``d``.
    Raises ``ValueError`` with a message fit for an API user.
    """
    # bool is an int subclass; "timeout": true is a mistake, not 1 second.
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: expected e.g. '30s', '5m', '1h30m'")
    if isinstance(text, int | float):
        return _checked(float(text), text)
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected a string such as '30s'")
    compact = text.strip().lower()
    if _BARE_NUMBER.fullmatch(compact):
        return _checked(float(compact), text)
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"invalid duration {text!r}: expected a number followed by ms, s, m, h or d"
            " (e.g. '500ms', '30s', '5m', '1h30m', '2d')"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))
    return _checked(seconds, text)


def _checked(seconds: float, original: object) -> timedelta:
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {original!r}: must not be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"invalid duration {original!r}: longer than 3650 days")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The shortest ``parse_duration`` text for ``td`` (``"1h30m"``, ``"500ms"``)."""
    total_ms = round(td.total_seconds() * 1000)
    if total_ms < 0:
        raise ValueError(f"cannot format a negative duration {td!r}")
    if total_ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if total_ms:
        parts.append(f"{total_ms}ms")
    return "".join(parts)
