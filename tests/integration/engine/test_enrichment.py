"""`context.load`: resources fetched from the enrichment service (SSRF-guarded, cached),
and a miss recorded without failing the execution."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.integration.engine.conftest import (
    RecordingPublisher,
    create_workflow,
    drive,
    execution,
    send_event,
)
from tests.support import unique


def loading(event: str) -> dict[str, Any]:
    return {
        "workflow_id": unique("wf"),
        "version": "1",
        "name": "Enriched",
        "definition": {
            "trigger": {"type": "event", "event": event},
            "context": {"load": ["customer.profile", "order.details"]},
            "steps": [
                {
                    "id": "vip",
                    "type": "condition",
                    "condition": {
                        "field": "customer.profile.tier",
                        "operator": "eq",
                        "value": "gold",
                    },
                    "on_true": "allow",
                    "on_false": "block",
                },
                {"id": "allow", "type": "action", "action": {"type": "allow"}},
                {"id": "block", "type": "action", "action": {"type": "block"}},
            ],
        },
    }


def enriching_runtime(rt: Any, base_url: str) -> Any:
    from tasks.runtime import Runtime

    enriched = Runtime(replace(rt.settings, enrichment_base_url=base_url))
    enriched._publisher = RecordingPublisher()  # type: ignore[assignment]
    return enriched


def test_loaded_resources_are_merged_into_the_context(admin: Any, rt: Any, http_sink: Any) -> None:
    customer = unique("c")
    http_sink.respond("/enrich/customer/profile", body={"tier": "gold", "since": 2019})
    http_sink.respond("/enrich/order/details", status=404)
    enriched = enriching_runtime(rt, f"{http_sink.url}/enrich")
    event = f"enrich.{unique('e')}"
    create_workflow(admin, loading(event))
    [execution_id] = send_event(admin, event, {"customer": {"id": customer}})["execution_ids"]
    try:
        drive(enriched)
    finally:
        enriched.dispose()
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert body["context"]["customer"] == {
        "id": customer,
        "profile": {"tier": "gold", "since": 2019},
    }
    report = body["context"]["_enrichment"]
    assert report["customer.profile"] == {"status": "loaded"}
    assert report["order.details"]["status"] == "error"
    [call] = [c for c in http_sink.calls("/enrich/customer/profile") if customer in c.path]
    assert call.path.endswith(f"?id={customer}")


def test_without_an_enrichment_service_the_payload_is_used(admin: Any, rt: Any) -> None:
    event = f"enrich.{unique('e')}"
    create_workflow(admin, loading(event))
    payload = {"customer": {"profile": {"tier": "gold"}}}
    [execution_id] = send_event(admin, event, payload)["execution_ids"]
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert body["context"]["_enrichment"]["customer.profile"]["status"] == "skipped"
