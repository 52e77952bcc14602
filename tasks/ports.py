"""The real StepPorts: what a step's execute items reach, for one step attempt.

HTTP goes through the SSRF guard and the effects ledger (a call that already
succeeded under its idempotency key is replayed from the ledger, not sent
again); notifications through the Notifier (same ledger); record writes are
buffered and applied in the step's final transaction; `log` lines go to the
structured log and the step's trace.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog

from engine.errors import StepError
from engine.port import HttpRequest, HttpResponse, Notification
from tasks.ledger import EffectsLedger
from tasks.notifier import Notifier
from tasks.outbound import OutboundHttp
from tasks.records import RecordBuffer

log = structlog.get_logger("workflow.step")


class WorkerPorts:
    def __init__(
        self,
        *,
        http: OutboundHttp,
        ledger: EffectsLedger,
        notifier: Notifier,
        records: RecordBuffer,
        deadline: float | None,
        allow_effects: bool,
        log_fields: Mapping[str, Any],
    ) -> None:
        self._http = http
        self._ledger = ledger
        self._notifier = notifier
        self.records = records
        self._deadline = deadline  # time.monotonic() value; None: no step timeout
        # The atomic path runs inside an open transaction that the ledger must
        # not commit: it never calls out, and refuses to if asked.
        self._allow_effects = allow_effects
        self._log_fields = dict(log_fields)
        self.log_lines: list[str] = []
        self.effects_replayed = 0

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise StepError("timeout", "the step ran out of time")
        return remaining

    def _check_effects_allowed(self) -> None:
        if not self._allow_effects:
            raise RuntimeError("an outbound effect was attempted on the atomic path")

    def http_request(self, request: HttpRequest) -> HttpResponse:
        self._check_effects_allowed()
        key = request.idempotency_key
        if key:
            previous = self._ledger.recorded(key)
            if previous is not None:
                self.effects_replayed += 1
                return HttpResponse(
                    int(previous["status_code"]),
                    previous.get("headers") or {},
                    previous.get("body"),
                )
        response = self._http.send(request, deadline_seconds=self._remaining())
        if key:
            self._ledger.record(key, "http", response.to_dict())
        return response

    def notify(self, notification: Notification) -> dict[str, Any]:
        self._check_effects_allowed()
        self._remaining()
        return self._notifier.notify(notification)

    def create_record(
        self, entity: str, entity_id: str | None, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.records.create(entity, entity_id, data)

    def update_record(self, entity: str, entity_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return self.records.update(entity, entity_id, data)

    def delete_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        return self.records.delete(entity, entity_id)

    def log(self, message: str) -> None:
        self.log_lines.append(message)
        log.info("workflow_log", message=message, **self._log_fields)
