"""Execute items: one runner per item type, each given the already-rendered item.

Runners do their I/O through ``StepPorts`` and return the item's output. Any
failure is a ``StepError``; nothing is swallowed, so ``retry`` and ``on_error``
apply to the step (SPEC §2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from engine.duration import parse_duration
from engine.errors import StepError
from engine.outcome import DEFAULT_APPROVAL_EXPIRY, ApprovalRequest
from engine.port import (
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    HTTP_METHODS,
    HttpRequest,
    Notification,
    StepPorts,
)


@dataclass(frozen=True)
class ItemCall:
    """What an item runner may use besides the rendered item."""

    ports: StepPorts
    idempotency_key: str
    step_timeout: timedelta | None


ItemRunner = Callable[[Mapping[str, Any], ItemCall], Any]


def run_http(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    """``webhook``/``http_request``: output ``{status_code, headers, body}``; non-2xx fails."""
    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        raise StepError("validation", f"{item['type']} url is empty after rendering")
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise StepError("validation", f"{item['type']} url {url!r} is not http(s)")
    default_method = "POST" if item["type"] == "webhook" else "GET"
    method = str(item.get("method") or default_method).upper()
    if method not in HTTP_METHODS:
        raise StepError("validation", f"unsupported HTTP method {method!r}")
    headers = {str(k): _text(v) for k, v in (item.get("headers") or {}).items() if v is not None}
    request = HttpRequest(
        method=method,
        url=url,
        headers=headers,
        body=item.get("body"),
        timeout_seconds=_timeout_seconds(item.get("timeout"), call.step_timeout),
        idempotency_key=call.idempotency_key,
    )
    response = call.ports.http_request(request)
    if not response.is_success:
        # Ports should already raise; this keeps a lax port from turning a 500
        # into a success.
        code = "http_5xx" if response.status_code >= 500 else "http_4xx"
        raise StepError(
            code,
            f"{method} {url} answered {response.status_code}",
            status_code=response.status_code,
            details={"body": response.body},
        )
    return response.to_dict()


def _timeout_seconds(value: Any, step_timeout: timedelta | None) -> float:
    if value is not None:
        try:
            return parse_duration(value).total_seconds()
        except ValueError as exc:
            raise StepError("validation", str(exc)) from exc
    if step_timeout is not None:
        return step_timeout.total_seconds()
    return DEFAULT_HTTP_TIMEOUT_SECONDS


def run_notify(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    recipients = _recipients(item.get("recipients"))
    if not recipients:
        raise StepError("validation", "notify has no recipients after rendering")
    subject = item.get("subject")
    notification = Notification(
        recipients=recipients,
        message=_text(item.get("message")),
        subject=None if subject is None else _text(subject),
        idempotency_key=call.idempotency_key,
    )
    return call.ports.notify(notification)


def _recipients(value: Any) -> tuple[str, ...]:
    # A recipient template may render to a list ("{{ team.emails }}") or to
    # nothing (a missing field): flatten, and drop the empty ones.
    flat: list[str] = []
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, list):
            flat.extend(_text(e) for e in entry if e not in (None, ""))
        elif entry not in (None, ""):
            flat.append(_text(entry))
    return tuple(r for r in flat if r.strip())


def run_create_record(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    entity_id = item.get("entity_id")
    return call.ports.create_record(
        _entity(item),
        None if entity_id in (None, "") else _text(entity_id),
        _data(item),
    )


def run_update_record(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    return call.ports.update_record(_entity(item), _entity_id(item), _data(item))


def run_delete_record(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    return call.ports.delete_record(_entity(item), _entity_id(item))


def _entity(item: Mapping[str, Any]) -> str:
    entity = item.get("entity")
    if not isinstance(entity, str) or not entity:
        raise StepError("validation", f"{item['type']} needs an entity")
    return entity


def _entity_id(item: Mapping[str, Any]) -> str:
    entity_id = item.get("entity_id")
    if entity_id in (None, ""):
        raise StepError("validation", f"{item['type']} entity_id is empty after rendering")
    return _text(entity_id)


def _data(item: Mapping[str, Any]) -> dict[str, Any]:
    data = item.get("data")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise StepError("type", f"{item['type']} data must be an object, not {type(data).__name__}")
    return dict(data)


def run_set(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    values = item.get("values")
    if not isinstance(values, Mapping):
        raise StepError("type", "set values must render to an object")
    return {"values": dict(values)}


def run_log(item: Mapping[str, Any], call: ItemCall) -> dict[str, Any]:
    message = _text(item.get("message"))
    call.ports.log(message)
    return {"message": message}


ITEM_RUNNERS: Mapping[str, ItemRunner] = {
    "webhook": run_http,
    "http_request": run_http,
    "notify": run_notify,
    "create_record": run_create_record,
    "update_record": run_update_record,
    "delete_record": run_delete_record,
    "set": run_set,
    "log": run_log,
}


def approval_from_item(
    item: Mapping[str, Any], *, fallback_role: str | None, fallback_reason: str | None
) -> ApprovalRequest:
    """The approval a (rendered) ``create_approval_request`` item asks for."""
    data = item.get("data") or {}
    if not isinstance(data, Mapping):
        raise StepError("type", "create_approval_request data must be an object")
    entity_id = item.get("entity_id")
    return ApprovalRequest(
        entity=_text(item.get("entity") or "execution"),
        entity_id=None if entity_id in (None, "") else _text(entity_id),
        approver_role=_optional_text(data.get("approver_role")) or fallback_role,
        expires_in=approval_expiry(data.get("expires_in")),
        reason=_optional_text(data.get("reason")) or fallback_reason,
        data=dict(data),
    )


def approval_expiry(value: Any) -> timedelta:
    if value in (None, ""):
        return DEFAULT_APPROVAL_EXPIRY
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise StepError("validation", f"approval expires_in: {exc}") from exc


def _optional_text(value: Any) -> str | None:
    return None if value in (None, "") else _text(value)


def _text(value: Any) -> str:
    """Text of a rendered value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=str, ensure_ascii=False)
