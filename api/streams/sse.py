"""Server-Sent Events framing (text/event-stream)."""

from __future__ import annotations

import json
from typing import Any

HEARTBEAT = b": heartbeat\n\n"


def retry_frame(milliseconds: int) -> bytes:
    """How long a browser's EventSource waits before it reconnects."""
    return f"retry: {milliseconds}\n\n".encode()


def frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, default=str, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()
