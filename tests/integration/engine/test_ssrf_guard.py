"""The SSRF guard's decisions (no traffic leaves the loopback: decisions are tested
on addresses, and only loopback is ever connected to)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from engine.errors import StepError
from engine.port import HttpRequest
from tasks.outbound import OutboundHttp
from tasks.ssrf import check_destination, is_allowed, parse_networks

NOTHING_ALLOWED = parse_networks([])
LOOPBACK_ALLOWED = parse_networks(["127.0.0.0/8"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "100.64.0.1",
    ],
)
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    assert not is_allowed(ipaddress.ip_address(address), NOTHING_ALLOWED)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_allowed(ipaddress.ip_address(address), NOTHING_ALLOWED)


def test_the_allow_list_admits_only_its_ranges() -> None:
    assert is_allowed(ipaddress.ip_address("127.0.0.1"), LOOPBACK_ALLOWED)
    assert not is_allowed(ipaddress.ip_address("10.0.0.1"), LOOPBACK_ALLOWED)
    assert not is_allowed(ipaddress.ip_address("169.254.169.254"), LOOPBACK_ALLOWED)


def test_a_host_name_is_refused_when_it_resolves_inside() -> None:
    with pytest.raises(StepError) as caught:
        check_destination("localhost", 80, NOTHING_ALLOWED)
    assert caught.value.code == "ssrf"
    assert not caught.value.retryable


def test_refused_requests_never_connect(http_sink: Any) -> None:
    guarded = OutboundHttp(NOTHING_ALLOWED, 1024, 2.0)
    with pytest.raises(StepError) as caught:
        guarded.send(HttpRequest("GET", http_sink.url + "/ssrf-probe"))
    assert caught.value.code == "ssrf"
    assert http_sink.calls("/ssrf-probe") == []
    for target in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(StepError) as refused:
            guarded.send(HttpRequest("GET", target))
        assert refused.value.code == "ssrf"


def test_allow_listed_loopback_is_reached_with_the_idempotency_key(http_sink: Any) -> None:
    allowed = OutboundHttp(LOOPBACK_ALLOWED, 1024, 2.0)
    response = allowed.send(
        HttpRequest("POST", http_sink.url + "/allowed", body={"a": 1}, idempotency_key="k:1")
    )
    assert response.status_code == 200
    assert response.body == {"ok": True}
    [call] = http_sink.calls("/allowed")
    assert call.headers["Idempotency-Key"] == "k:1"
    assert call.body == {"a": 1}


def test_responses_over_the_size_cap_fail(http_sink: Any) -> None:
    http_sink.respond("/big", body={"blob": "x" * 5000})
    capped = OutboundHttp(LOOPBACK_ALLOWED, 1024, 2.0)
    with pytest.raises(StepError) as caught:
        capped.send(HttpRequest("GET", http_sink.url + "/big"))
    assert caught.value.code == "response_too_large"


def test_slow_answers_time_out(http_sink: Any) -> None:
    http_sink.respond("/slow", delay=1.5)
    quick = OutboundHttp(LOOPBACK_ALLOWED, 1024, 2.0)
    with pytest.raises(StepError) as caught:
        quick.send(HttpRequest("GET", http_sink.url + "/slow", timeout_seconds=0.3))
    assert caught.value.code == "timeout"
    assert caught.value.retryable


def test_workflows_are_refused_internal_urls_in_their_trace(
    admin: Any, rt: Any, engine_settings: Any
) -> None:
    from tests.integration.engine.conftest import (
        create_workflow,
        drive,
        execution,
        send_event,
        trace,
    )
    from tests.support import unique

    event = f"ssrf.{unique('e')}"
    create_workflow(
        admin,
        {
            "workflow_id": unique("wf"),
            "version": "1",
            "name": "Metadata grab",
            "definition": {
                "trigger": {"type": "event", "event": event},
                "steps": [
                    {
                        "id": "grab",
                        "type": "execute",
                        "execute": [
                            {
                                "type": "http_request",
                                "url": "http://169.254.169.254/latest/meta-data/",
                            }
                        ],
                    }
                ],
            },
        },
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "failed"
    assert body["error_type"] == "step_error"
    [step] = trace(admin, execution_id)["steps"]
    assert step["status"] == "failed"
    assert "metadata" in step["error_message"]
