"""The shipped example workflows, end to end on a real stack, branch by branch
(examples/README.md). Branches that need an approval decision or a
follow-up event stop at `waiting`: that, and the approval row, is asserted."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import text

from tests.e2e.engine.conftest import Api, load_example
from tests.e2e.stack import Stack
from tests.integration.engine.sinks import HttpSink, SmtpSink, wait_for

pytestmark = pytest.mark.e2e


def uid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def org(engine_stack: Stack, http_sink: HttpSink) -> Api:
    """One organization with every example deployed, and members in the example's groups."""
    admin = Api(engine_stack.api_url).register(uid("admin"))
    manager = Api(engine_stack.api_url).register(uid("manager"))
    inventory = Api(engine_stack.api_url).register(uid("stock"))
    for member, groups in ((manager, ["sales_manager"]), (inventory, ["inventory_manager"])):
        me = member.get("/auth/me").json()
        added = admin.post(
            f"/organizations/{admin.organization_id}/members",
            {"username": me["username"], "role": "approver", "approver_roles": groups},
        )
        assert added.status_code == 201, added.text
    admin.members = {"sales_manager": manager, "inventory_manager": inventory}  # type: ignore[attr-defined]
    admin.workflows = {  # type: ignore[attr-defined]
        name: admin.deploy(load_example(name, http_sink.url))
        for name in (
            "high-value-order-approval",
            "order-processing-with-timeout",
            "data-processing-with-timeout",
            "product-inventory-sync",
            "cart-fraud-detection",
            "quote-expiration-management",
            "quote-multi-level-approval",
        )
    }
    return admin


def only_execution(accepted: dict[str, Any]) -> str:
    assert len(accepted["execution_ids"]) == 1, accepted
    return str(accepted["execution_ids"][0])


def records(
    db: Any, organization_id: str, entity: str, entity_id: str | None = None
) -> list[dict[str, Any]]:
    query = "SELECT entity_id, data FROM records WHERE organization_id = :org AND entity = :entity"
    params: dict[str, Any] = {"org": organization_id, "entity": entity}
    if entity_id is not None:
        query += " AND entity_id = :id"
        params["id"] = entity_id
    with db.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(query), params)]


def notifications(db: Any, execution_id: str) -> list[dict[str, Any]]:
    query = (
        "SELECT channel, recipient, status, error, message FROM notifications"
        " WHERE execution_id = :id ORDER BY created_at"
    )
    with db.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(query), {"id": execution_id})]


def approvals(db: Any, execution_id: str) -> list[dict[str, Any]]:
    query = (
        "SELECT id, step_id, approver_role, status, expires_at, requested_at, data,"
        " entity_type, entity_id FROM approvals WHERE execution_id = :id"
    )
    with db.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(query), {"id": execution_id})]


# --- high-value-order-approval ---------------------------------------------------------------
def order(total: float, tier: str) -> dict[str, Any]:
    return {
        "order": {"id": uid("ord"), "total": total, "items": [1, 2, 3]},
        "customer": {"tier": tier, "name": "Ada"},
    }


def test_high_value_small_orders_are_allowed(org: Api) -> None:
    execution_id = only_execution(org.send("order.checkout.initiated", order(120, "silver")))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == ["check_order_value", "allow_order"]
    assert body["context"]["_enrichment"]["order.details"]["status"] == "skipped"


def test_high_value_vip_orders_are_allowed(org: Api) -> None:
    execution_id = only_execution(org.send("order.checkout.initiated", order(25000, "gold")))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == ["check_order_value", "check_customer_tier", "allow_order"]


def test_high_value_other_orders_wait_for_a_sales_manager(
    org: Api, db: Any, smtp_sink: SmtpSink, http_sink: HttpSink
) -> None:
    payload = order(25000, "silver")
    execution_id = only_execution(org.send("order.checkout.initiated", payload))
    body = org.settle(execution_id, states={"waiting"})
    assert body["result"] == "blocked"  # provisional, until the approval is decided
    assert org.path(execution_id) == [
        "check_order_value",
        "check_customer_tier",
        "require_approval",
    ]
    [approval] = approvals(db, execution_id)
    assert approval["approver_role"] == "sales_manager"
    assert approval["status"] == "pending"
    assert approval["step_id"] == "require_approval"
    assert (approval["expires_at"] - approval["requested_at"]).total_seconds() == pytest.approx(
        86400, abs=5
    )
    assert approval["data"]["customer_name"] == "Ada"
    assert approval["entity_id"] == payload["order"]["id"]
    manager_email = org.members["sales_manager"].get("/auth/me").json()["email"]  # type: ignore[attr-defined]
    [mail] = wait_for(lambda: smtp_sink.to(manager_email))
    assert payload["order"]["id"] in mail.content
    assert f"/approvals/{approval['id']}" in mail.content  # approval_url
    slack = [c for c in http_sink.calls("/slack") if payload["order"]["id"] in str(c.body)]
    assert len(slack) == 1
    assert slack[0].body["channel"] == "#sales-approvals"
    channels = sorted((n["channel"], n["status"]) for n in notifications(db, execution_id))
    assert channels == [("email", "sent"), ("slack", "sent")]


# --- order-processing-with-timeout ------------------------------------------------------------
def test_order_processing_rejects_negative_totals(org: Api) -> None:
    execution_id = only_execution(
        org.send("order.created", {"order": {"id": uid("o"), "total": -5}})
    )
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    assert org.path(execution_id) == ["validate-order", "reject-order"]


def test_order_processing_pays_low_risk_orders(
    org: Api, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    order_id = uid("o")
    payload = {"order": {"id": order_id, "total": 250}, "customer": {"risk_score": 10}}
    execution_id = only_execution(org.send("order.created", payload))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "executed")
    assert org.path(execution_id) == ["validate-order", "check-fraud", "process-payment"]
    [call] = [
        c
        for c in http_sink.calls("/payment-gateway.example.com/process")
        if c.body["order_id"] == order_id
    ]
    assert call.method == "POST"
    assert call.body == {"order_id": order_id, "amount": 250}
    assert call.headers["Idempotency-Key"] == f"{execution_id}:process-payment:1:0"
    assert any(order_id in m.content for m in smtp_sink.to("orders@example.com"))


def test_order_processing_sends_risky_orders_to_review(org: Api, smtp_sink: SmtpSink) -> None:
    order_id = uid("o")
    payload = {"order": {"id": order_id, "total": 250}, "customer": {"risk_score": 90}}
    execution_id = only_execution(org.send("order.created", payload))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    assert org.path(execution_id) == ["validate-order", "check-fraud", "request-manual-review"]
    assert any(order_id in m.content for m in smtp_sink.to("fraud@example.com"))


# --- data-processing-with-timeout -------------------------------------------------------------
def test_data_processing_processes_a_full_batch(
    org: Api, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    batch = uid("b")
    payload = {"batch_id": batch, "data": {"records_count": 2, "records": [{"a": 1}, {"a": 2}]}}
    execution_id = only_execution(org.send("data.batch.ready", payload))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "executed")
    assert org.path(execution_id) == ["fetch-data", "validate-data", "process-data"]
    assert len(http_sink.calls(f"/api.example.com/data/batch/{batch}")) == 1
    [processed] = [
        c for c in http_sink.calls("/processing.example.com/process") if c.body["batch_id"] == batch
    ]
    assert processed.body["records"] == [{"a": 1}, {"a": 2}]
    assert any(batch in m.content for m in smtp_sink.to("data-team@example.com"))


def test_data_processing_blocks_an_empty_batch(org: Api) -> None:
    execution_id = only_execution(
        org.send("data.batch.ready", {"batch_id": uid("b"), "data": {"records_count": 0}})
    )
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    assert org.path(execution_id) == ["fetch-data", "validate-data", "log-error"]
    log_step = org.trace(execution_id)["steps"][-1]
    assert log_step["output"]["log"][0].startswith("Empty batch received")


def test_data_processing_fails_after_three_fetch_attempts(org: Api, http_sink: HttpSink) -> None:
    batch = uid("b")
    http_sink.respond(f"/api.example.com/data/batch/{batch}", status=503)
    execution_id = only_execution(
        org.send("data.batch.ready", {"batch_id": batch, "data": {"records_count": 1}})
    )
    body = org.settle(execution_id, timeout=40)
    assert (body["status"], body["result"], body["error_type"]) == (
        "failed",
        "failed",
        "step_error",
    )
    attempts = [(s["step_id"], s["attempt"], s["status"]) for s in org.trace(execution_id)["steps"]]
    assert attempts == [
        ("fetch-data", 1, "failed"),
        ("fetch-data", 2, "failed"),
        ("fetch-data", 3, "failed"),
    ]
    assert len(http_sink.calls(f"/api.example.com/data/batch/{batch}")) == 3


# --- product-inventory-sync --------------------------------------------------------------------
def product(quantity: int, reorder_point: int, sink: HttpSink) -> dict[str, Any]:
    return {
        "product": {
            "id": uid("p"),
            "sku": uid("sku"),
            "name": "Widget",
            "available_quantity": quantity,
            "reorder_settings": {
                "reorder_point": reorder_point,
                "reorder_quantity": 50,
                "preferred_supplier": "acme",
            },
        },
        "integrations": {
            "erp": {"webhook_url": f"{sink.url}/erp"},
            "storefront": {"webhook_url": f"{sink.url}/storefront"},
        },
    }


@pytest.mark.parametrize(
    ("quantity", "reorder_point", "expected_path"),
    [
        (
            0,
            10,
            [
                "check_low_stock",
                "trigger_reorder",
                "check_oversell_risk",
                "prevent_overselling",
                "allow_workflow",
            ],
        ),
        (
            5,
            10,
            [
                "check_low_stock",
                "trigger_reorder",
                "check_oversell_risk",
                "update_inventory_status",
                "allow_workflow",
            ],
        ),
        (
            50,
            10,
            ["check_low_stock", "check_oversell_risk", "update_inventory_status", "allow_workflow"],
        ),
        (
            0,
            -1,
            ["check_low_stock", "check_oversell_risk", "prevent_overselling", "allow_workflow"],
        ),
    ],
)
def test_product_inventory_sync_paths(
    org: Api,
    db: Any,
    http_sink: HttpSink,
    smtp_sink: SmtpSink,
    quantity: int,
    reorder_point: int,
    expected_path: list[str],
) -> None:
    payload = product(quantity, reorder_point, http_sink)
    product_id = payload["product"]["id"]
    execution_id = only_execution(org.send("product.inventory.changed", payload))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == expected_path
    [stored] = records(db, org.organization_id, "product", product_id)
    reordered = "trigger_reorder" in expected_path
    erp = [c for c in http_sink.calls("/erp") if c.body["product_id"] == product_id]
    orders = [
        r
        for r in records(db, org.organization_id, "purchase_order")
        if r["data"]["product_id"] == product_id
    ]
    assert len(erp) == len(orders) == (1 if reordered else 0)
    if reordered:
        assert erp[0].body["reorder_quantity"] == 50
        stock_email = org.members["inventory_manager"].get("/auth/me").json()["email"]  # type: ignore[attr-defined]
        assert wait_for(
            lambda: [m for m in smtp_sink.to(stock_email) if payload["product"]["sku"] in m.content]
        )
    if "prevent_overselling" in expected_path:
        assert stored["data"]["out_of_stock"] is True
        assert (
            len([c for c in http_sink.calls("/storefront") if c.body["product_id"] == product_id])
            == 1
        )
    else:
        assert stored["data"]["out_of_stock"] is False
        assert stored["data"]["available_for_sale"] is True


# --- cart-fraud-detection ----------------------------------------------------------------------
def cart(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "cart": {"id": uid("cart"), "total": 6000, "shipping_address": {"country": "FR"}},
        "customer": {
            "id": uid("cust"),
            "carts_created_last_hour": 1,
            "account_age_days": 3,
            "billing_address": {"country": "FR"},
            "verified": False,
        },
        "device": {"fingerprint": "fp-1"},
    }
    for key, value in overrides.items():
        payload["customer"][key] = value
    return payload


def test_cart_fraud_checks_all_passing_allow_checkout(org: Api, http_sink: HttpSink) -> None:
    payload = cart()
    execution_id = only_execution(org.send("cart.checkout.started", payload))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == ["parallel_fraud_checks", "allow_checkout"]
    branches = {s["step_id"] for s in org.trace(execution_id)["steps"] if s["branch_key"]}
    assert branches == {
        "check_velocity",
        "check_high_value_items",
        "check_shipping_address",
        "check_external_fraud_api",
    }
    [call] = [
        c
        for c in http_sink.calls("/fraud-api.example.com/check")
        if c.body["customer_id"] == payload["customer"]["id"]
    ]
    assert call.headers["Authorization"] == "Bearer fraud-token-123"
    trace_text = str(org.trace(execution_id))
    assert "fraud-token-123" not in trace_text  # secrets never reach the trace


def test_cart_fraud_failing_check_flags_for_review(org: Api, db: Any) -> None:
    payload = cart(carts_created_last_hour=9)
    execution_id = only_execution(org.send("cart.checkout.started", payload))
    body = org.settle(execution_id, states={"waiting"})
    assert body["result"] == "blocked"
    assert org.path(execution_id) == ["flag_for_review"]
    [parallel] = [
        s for s in org.trace(execution_id)["steps"] if s["step_id"] == "parallel_fraud_checks"
    ]
    assert parallel["status"] == "failed"
    [approval] = approvals(db, execution_id)
    assert approval["approver_role"] == "fraud_analyst"
    assert approval["entity_id"] == payload["cart"]["id"]
    assert (approval["expires_at"] - approval["requested_at"]).total_seconds() == pytest.approx(
        4 * 3600, abs=5
    )
    [pagerduty] = notifications(db, execution_id)
    assert (pagerduty["channel"], pagerduty["status"]) == ("other", "skipped")
    assert "pagerduty" in pagerduty["error"]
    [customer] = records(db, org.organization_id, "customer", payload["customer"]["id"])
    assert customer["data"]["fraud_flag"] is True


def test_cart_fraud_api_failing_after_retries_flags_for_review(
    org: Api, db: Any, http_sink: HttpSink
) -> None:
    http_sink.respond("/fraud-api.example.com/check", status=503)
    try:
        payload = cart()
        execution_id = only_execution(org.send("cart.checkout.started", payload))
        org.settle(execution_id, timeout=40, states={"waiting"})
    finally:
        http_sink.scripts.pop("/fraud-api.example.com/check", None)
    api_attempts = [
        s for s in org.trace(execution_id)["steps"] if s["step_id"] == "check_external_fraud_api"
    ]
    assert [(s["attempt"], s["status"]) for s in api_attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert org.path(execution_id) == ["flag_for_review"]
    assert len(approvals(db, execution_id)) == 1


# --- quote-expiration-management ---------------------------------------------------------------
def execute(org: Api, name: str, payload: dict[str, Any]) -> str:
    workflow = org.workflows[name]  # type: ignore[attr-defined]
    started = org.post(f"/workflows/{workflow['id']}/execute", {"payload": payload})
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


def quote(hours: int, reminder_sent: bool, sink: HttpSink) -> dict[str, Any]:
    return {
        "quote": {
            "id": uid("q"),
            "number": uid("Q"),
            "hours_until_expiration": hours,
            "reminder_sent": reminder_sent,
            "customer_email": "buyer@example.com",
            "sales_rep_email": "rep@example.com",
            "total": 900,
        },
        "customer": {"id": uid("c"), "name": "Globex"},
        "integrations": {"crm": {"webhook_url": f"{sink.url}/crm"}},
    }


def test_quote_expiration_sends_a_reminder(
    org: Api, db: Any, smtp_sink: SmtpSink, http_sink: HttpSink
) -> None:
    payload = quote(12, False, http_sink)
    execution_id = execute(org, "quote-expiration-management", payload)
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == [
        "check_reminder_needed",
        "send_reminder",
        "check_expired",
        "continue_monitoring",
        "complete_workflow",
    ]
    number = payload["quote"]["number"]
    assert any(number in m.content for m in smtp_sink.to("buyer@example.com"))
    [stored] = records(db, org.organization_id, "quote", payload["quote"]["id"])
    assert stored["data"]["reminder_sent"] is True


def test_quote_expiration_expires_a_quote(org: Api, db: Any, http_sink: HttpSink) -> None:
    payload = quote(0, True, http_sink)
    execution_id = execute(org, "quote-expiration-management", payload)
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == [
        "check_reminder_needed",
        "check_expired",
        "expire_quote",
        "complete_workflow",
    ]
    [stored] = records(db, org.organization_id, "quote", payload["quote"]["id"])
    assert stored["data"]["status"] == "expired"
    assert (
        len([c for c in http_sink.calls("/crm") if c.body["quote_id"] == payload["quote"]["id"]])
        == 1
    )
    tasks = [
        r
        for r in records(db, org.organization_id, "task")
        if r["data"]["related_entity_id"] == payload["quote"]["id"]
    ]
    assert len(tasks) == 1


def test_quote_expiration_without_a_quote_just_monitors(org: Api) -> None:
    execution_id = execute(org, "quote-expiration-management", {})
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == [
        "check_reminder_needed",
        "check_expired",
        "continue_monitoring",
        "complete_workflow",
    ]


# --- quote-multi-level-approval ----------------------------------------------------------------
def test_small_quotes_are_auto_approved(org: Api, db: Any, smtp_sink: SmtpSink) -> None:
    quote_id = uid("q")
    payload = {
        "quote": {
            "id": quote_id,
            "number": "Q-1",
            "total": 100,
            "discount_percentage": 5,
            "has_custom_pricing": False,
            "created_by_email": "author@example.com",
        },
        "customer": {"name": "Initech"},
    }
    execution_id = only_execution(org.send("quote.created", payload))
    body = org.settle(execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert org.path(execution_id) == ["check_quote_value", "auto_approve_quote"]
    [stored] = records(db, org.organization_id, "quote", quote_id)
    assert stored["data"]["auto_approved"] is True
    assert wait_for(lambda: smtp_sink.to("author@example.com"))


def test_large_quotes_wait_for_the_sales_rep(org: Api, db: Any) -> None:
    quote_id = uid("q")
    payload = {
        "quote": {
            "id": quote_id,
            "number": "Q-2",
            "total": 9000,
            "discount_percentage": 5,
            "line_items": [1, 2],
        },
        "customer": {"name": "Initech"},
        "sales_rep": {"email": "rep@example.com", "slack_id": "@rep"},
    }
    execution_id = only_execution(org.send("quote.created", payload))
    org.settle(execution_id, states={"waiting"})
    assert org.path(execution_id) == ["check_quote_value", "require_sales_rep_review"]
    [approval] = approvals(db, execution_id)
    assert approval["approver_role"] == "sales_rep"
    assert approval["data"]["stage"] == "sales_rep_review"
    [stored] = records(db, org.organization_id, "quote", quote_id)
    assert stored["data"]["status"] == "pending_rep_review"
