"""Reading a text/event-stream: events, and the heartbeats between them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerEvent:
    type: str
    data: Any
    id: str | None


HEARTBEAT = ServerEvent("heartbeat", None, None)


def parse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Events as the server frames them; a comment line (`: heartbeat`) as HEARTBEAT,
    so a reader can check its deadline while nothing happens."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line.startswith(":"):
            yield HEARTBEAT
        elif line == "":
            if data or "event" in fields:
                yield ServerEvent(
                    fields.get("event", "message"),
                    json.loads("\n".join(data)) if data else None,
                    fields.get("id"),
                )
            fields, data = {}, []
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name in {"event", "id"}:
                fields[name] = value
