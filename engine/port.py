"""The ports a step uses to reach the outside world, and the data crossing them.

The engine never does I/O itself: ``run_step`` calls these methods. The Celery
task layer implements them for real (HTTP with the SSRF guard, SMTP/Slack,
the record store, the log); the dry run implements them with recorders; unit
tests use in-memory fakes. Every method raises ``StepError`` on failure; the
HTTP port maps non-2xx answers to ``http_4xx``/``http_5xx`` (with
``status_code``), connection failures to ``connection`` and timeouts to
``timeout``, and sends ``idempotency_key`` as the ``Idempotency-Key`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
DEFAULT_HTTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS
    idempotency_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body,
            "timeout_seconds": self.timeout_seconds,
            "idempotency_key": self.idempotency_key,
        }


@dataclass(frozen=True)
class HttpResponse:
    """An answer; ``body`` is already parsed when it was JSON."""

    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def to_dict(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "headers": dict(self.headers), "body": self.body}


@dataclass(frozen=True)
class Notification:
    """A message for recipients as written (``email:``/address, ``role:``,
    ``slack:#channel``, ``webhook:<url>``); resolving them is the port's job."""

    recipients: tuple[str, ...]
    message: str
    subject: str | None = None
    idempotency_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipients": list(self.recipients),
            "message": self.message,
            "subject": self.subject,
            "idempotency_key": self.idempotency_key,
        }


class StepPorts(Protocol):
    def http_request(self, request: HttpRequest) -> HttpResponse: ...

    def notify(self, notification: Notification) -> dict[str, Any]: ...

    def create_record(
        self, entity: str, entity_id: str | None, data: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def update_record(
        self, entity: str, entity_id: str, data: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def delete_record(self, entity: str, entity_id: str) -> dict[str, Any]: ...

    def log(self, message: str) -> None: ...
