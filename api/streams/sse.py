"""Server-Sent Events framing (text/event-stream)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

HEARTBEAT = b": heartbeat\n\n"


def retry_frame(milliseconds: int) -> bytes:
    """How long a browser's EventSource waits before it reconnects."""
    return f"retry: {milliseconds}\n\n".encode()


def frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, default=_plain, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def _plain(value: Any) -> str:
    """Times as the REST API writes them (ISO 8601); anything else as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)
