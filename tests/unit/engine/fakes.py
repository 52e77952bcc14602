"""In-memory implementations of the engine's ports, for unit tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.definition import Definition
from engine.errors import StepError
from engine.port import HttpRequest, HttpResponse, Notification
from engine.validation import validate_workflow

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples" / "original"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakePorts:
    """A real StepPorts: keeps records in a dict and answers HTTP from a script."""

    def __init__(self, http: Callable[[HttpRequest], HttpResponse] | None = None) -> None:
        self.requests: list[HttpRequest] = []
        self.notifications: list[Notification] = []
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: list[str] = []
        self._http = http
        self._next_id = 0

    def http_request(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if self._http is None:
            return HttpResponse(200, {"content-type": "application/json"}, {"ok": True})
        return self._http(request)

    def notify(self, notification: Notification) -> dict[str, Any]:
        self.notifications.append(notification)
        return {"sent": len(notification.recipients)}

    def create_record(
        self, entity: str, entity_id: str | None, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        if entity_id is None:
            self._next_id += 1
            entity_id = f"{entity}-{self._next_id}"
        self.records[(entity, entity_id)] = dict(data)
        return {"entity": entity, "entity_id": entity_id, "data": dict(data)}

    def update_record(self, entity: str, entity_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        record = {**self.records.get((entity, entity_id), {}), **data}
        self.records[(entity, entity_id)] = record
        return {"entity": entity, "entity_id": entity_id, "data": record}

    def delete_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        if (entity, entity_id) not in self.records:
            raise StepError("not_found", f"no {entity} {entity_id}")
        del self.records[(entity, entity_id)]
        return {"entity": entity, "entity_id": entity_id, "deleted": True}

    def log(self, message: str) -> None:
        self.logs.append(message)


def failing_http(
    code: str, status_code: int | None = None
) -> Callable[[HttpRequest], HttpResponse]:
    def answer(request: HttpRequest) -> HttpResponse:
        raise StepError(code, f"{request.url} failed", status_code=status_code)

    return answer


def load_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_text())


def example_definition(name: str) -> Definition:
    return Definition.from_dict(validate_workflow(load_example(name))["definition"])


def definition_of(*steps: dict[str, Any], **trigger: Any) -> Definition:
    """A definition from inline steps, validated like a real one."""
    raw = {
        "workflow_id": "test",
        "version": 1,
        "name": "test",
        "trigger": trigger or {"type": "manual"},
        "steps": list(steps),
    }
    return Definition.from_dict(validate_workflow(raw)["definition"])
