"""Each branch of each original example (examples/README.md), dry-run."""

from datetime import timedelta

import pytest

from engine.dryrun import RecordingPorts, dry_run
from engine.errors import StepError
from engine.port import HttpRequest, HttpResponse
from engine.state import ApprovalStatus, ErrorType, ExecutionResult, ExecutionStatus
from engine.templating import TemplateRenderer
from tests.unit.engine.fakes import NOW, example_definition

R = ExecutionResult
S = ExecutionStatus
RENDERER = TemplateRenderer(secrets={"fraud_api_token": "fraud-secret-token"})


def run(name, payload, **kwargs):
    return dry_run(example_definition(name), payload, now=NOW, renderer=RENDERER, **kwargs)


def effects(report):
    """What the steps would do (the `context.load` fetches are tested on their own)."""
    return tuple(effect for effect in report.effects if effect["kind"] != "load")


def kinds(report):
    return [effect["kind"] for effect in effects(report)]


@pytest.mark.parametrize(
    ("name", "resources"),
    [
        (
            "high-value-order-approval",
            [
                "order.details",
                "customer.profile",
                "customer.order_history",
                "customer.credit_limit",
            ],
        ),
        ("order-processing-with-timeout", ["order.details", "customer.profile"]),
    ],
)
def test_an_example_that_loads_resources_lists_the_fetches_it_would_make(name, resources):
    report = run(name, {"order": {"id": "o-1", "total": 10}})
    first = list(report.effects)[: len(resources)]  # before any step's effect
    loads = [effect for effect in first if effect["kind"] == "load"]
    assert [load["resource"] for load in loads] == resources
    assert all(load["would"] == "fetch" for load in loads)
    assert {r: report.context["_enrichment"][r]["status"] for r in resources} == dict.fromkeys(
        resources, "skipped"
    )


# --- high-value-order-approval ------------------------------------------------

ORDER = {
    "order": {"id": "o-1", "total": 15000, "items": [1, 2]},
    "customer": {"tier": "silver", "name": "Ann"},
}


def test_a_small_order_is_allowed():
    report = run("high-value-order-approval", {"order": {"id": "o-1", "total": 9999.99}})
    assert report.path == ("check_order_value", "allow_order")
    assert (report.status, report.result) == (S.COMPLETED, R.ALLOWED)


def test_a_large_order_from_a_gold_customer_is_allowed():
    report = run("high-value-order-approval", {**ORDER, "customer": {"tier": "gold"}})
    assert report.path == ("check_order_value", "check_customer_tier", "allow_order")
    assert report.result is R.ALLOWED


def test_a_large_order_from_another_tier_waits_for_a_sales_manager():
    report = run("high-value-order-approval", ORDER)
    assert report.path == ("check_order_value", "check_customer_tier", "require_approval")
    assert (report.status, report.result) == (S.WAITING, R.BLOCKED)
    request = report.waiting["would_wait_for"]
    assert (request["approver_role"], request["expires_in"]) == ("sales_manager", "1d")
    assert request["data"]["order_items_count"] == 2
    assert kinds(report) == ["notify", "notify", "approval"]
    assert effects(report)[0]["recipients"] == ["role:sales_manager"]
    assert "<approval link>" in effects(report)[0]["message"]


@pytest.mark.parametrize(
    ("decision", "result", "error_type"),
    [
        (ApprovalStatus.APPROVED, R.ALLOWED, None),
        (ApprovalStatus.REJECTED, R.BLOCKED, None),
        (ApprovalStatus.EXPIRED, R.BLOCKED, ErrorType.TIMEOUT),
    ],
)
def test_the_managers_decision_settles_the_order(decision, result, error_type):
    report = run("high-value-order-approval", ORDER, approvals={"require_approval": decision})
    assert (report.status, report.result, report.error_type) == (S.COMPLETED, result, error_type)
    assert report.context["approvals"]["require_approval"]["status"] == decision.value


# --- order-processing-with-timeout ------------------------------------------------


def test_a_negative_total_rejects_the_order():
    report = run("order-processing-with-timeout", {"order": {"id": "o", "total": -1}})
    assert report.path == ("validate-order", "reject-order")
    assert report.result is R.BLOCKED
    assert report.message == "Invalid order total"


def test_a_low_risk_order_is_paid():
    payload = {"order": {"id": "o-7", "total": 120}, "customer": {"risk_score": 10}}
    report = run("order-processing-with-timeout", payload)
    assert report.path == ("validate-order", "check-fraud", "process-payment")
    assert report.result is R.EXECUTED
    http, notify = effects(report)
    assert (http["method"], http["url"]) == ("POST", "https://payment-gateway.example.com/process")
    assert http["body"] == {"order_id": "o-7", "amount": 120}
    assert notify["recipients"] == ["orders@example.com"]


def test_a_high_risk_order_goes_to_manual_review():
    payload = {"order": {"id": "o-7", "total": 120}, "customer": {"risk_score": "70"}}
    report = run("order-processing-with-timeout", payload)
    assert report.path == ("validate-order", "check-fraud", "request-manual-review")
    assert report.result is R.BLOCKED
    assert kinds(report) == ["notify"]


# --- data-processing-with-timeout ------------------------------------------------

BATCH = {"event": {"batch_id": "b-1"}, "data": {"records_count": 3, "records": [1, 2, 3]}}


def test_a_batch_with_records_is_processed():
    report = run("data-processing-with-timeout", BATCH)
    assert report.path == ("fetch-data", "validate-data", "process-data")
    assert report.result is R.EXECUTED
    get, post, notify = effects(report)
    assert (get["method"], get["url"]) == ("GET", "https://api.example.com/data/batch/b-1")
    assert post["body"] == {"batch_id": "b-1", "records": [1, 2, 3]}
    assert notify["message"] == "Batch b-1 processed successfully"


def test_the_batch_id_can_come_from_the_event_itself():
    report = run("data-processing-with-timeout", {"batch_id": "b-9"}, event_type="data.batch.ready")
    assert effects(report)[0]["url"] == "https://api.example.com/data/batch/b-9"


def test_an_empty_batch_is_logged_and_blocked():
    report = run("data-processing-with-timeout", {**BATCH, "data": {"records_count": 0}})
    assert report.path == ("fetch-data", "validate-data", "log-error")
    assert report.result is R.BLOCKED
    assert effects(report)[-1] == {
        "kind": "log",
        "would": "write",
        "message": "Empty batch received: b-1",
    }


def test_a_fetch_failing_three_times_fails_the_execution():
    def down(request: HttpRequest) -> HttpResponse:
        raise StepError("connection", "refused")

    report = run("data-processing-with-timeout", BATCH, ports=RecordingPorts(respond=down))
    assert report.path == ("fetch-data",)
    assert (report.status, report.result, report.error_type) == (
        S.FAILED,
        R.FAILED,
        ErrorType.STEP_ERROR,
    )
    assert [(s.step_id, s.attempt, s.status.value) for s in report.steps] == [
        ("fetch-data", 1, "failed"),
        ("fetch-data", 2, "failed"),
        ("fetch-data", 3, "failed"),
    ]
    retries = [d["retry"] for d in report.decisions if "retry" in d]
    assert retries == [{"attempt": 2, "after_seconds": 1.0}, {"attempt": 3, "after_seconds": 2.0}]


# --- product-inventory-sync ------------------------------------------------


def product(quantity, reorder_point):
    return {
        "product": {
            "id": "p-1",
            "sku": "SKU",
            "name": "Widget",
            "available_quantity": quantity,
            "reorder_settings": {
                "reorder_point": reorder_point,
                "reorder_quantity": 50,
                "preferred_supplier": "sup-1",
            },
        },
        "integrations": {
            "erp": {"webhook_url": "https://erp.example.com/hook"},
            "storefront": {"webhook_url": "https://shop.example.com/hook"},
        },
    }


@pytest.mark.parametrize(
    ("quantity", "reorder_point", "path"),
    [
        (
            0,
            10,
            (
                "check_low_stock",
                "trigger_reorder",
                "check_oversell_risk",
                "prevent_overselling",
                "allow_workflow",
            ),
        ),
        (
            5,
            10,
            (
                "check_low_stock",
                "trigger_reorder",
                "check_oversell_risk",
                "update_inventory_status",
                "allow_workflow",
            ),
        ),
        (
            50,
            10,
            ("check_low_stock", "check_oversell_risk", "update_inventory_status", "allow_workflow"),
        ),
        (
            0,
            -5,
            ("check_low_stock", "check_oversell_risk", "prevent_overselling", "allow_workflow"),
        ),
    ],
)
def test_the_four_inventory_paths_all_end_allowed(quantity, reorder_point, path):
    report = run("product-inventory-sync", product(quantity, reorder_point))
    assert report.path == path
    assert report.result is R.ALLOWED


def test_a_reorder_calls_the_erp_creates_a_purchase_order_and_notifies():
    report = run("product-inventory-sync", product(5, 10))
    assert kinds(report)[:3] == ["http_request", "create_record", "notify"]
    assert effects(report)[0]["body"]["reorder_quantity"] == 50
    assert effects(report)[1]["data"]["quantity"] == 50


# --- cart-fraud-detection ------------------------------------------------

CART = {
    "cart": {"id": "k-1", "total": 6000, "shipping_address": {"country": "DE"}},
    "customer": {
        "id": "c-1",
        "carts_created_last_hour": 1,
        "account_age_days": 3,
        "verified": False,
        "billing_address": {"country": "DE"},
    },
}


def test_a_cart_passing_every_check_is_allowed():
    report = run("cart-fraud-detection", CART)
    assert report.path == ("parallel_fraud_checks", "allow_checkout")
    assert report.result is R.ALLOWED
    (call,) = effects(report)
    assert call["headers"] == {"Authorization": "Bearer ***"}
    assert "fraud-secret-token" not in repr(report.to_dict())


def test_a_failed_check_flags_the_cart_for_a_fraud_analyst():
    payload = {**CART, "customer": {**CART["customer"], "carts_created_last_hour": 9}}
    report = run("cart-fraud-detection", payload)
    assert report.path == ("parallel_fraud_checks", "flag_for_review")
    assert (report.status, report.result) == (S.WAITING, R.BLOCKED)
    request = report.waiting["would_wait_for"]
    assert (request["approver_role"], request["expires_in"], request["entity_id"]) == (
        "fraud_analyst",
        "4h",
        "k-1",
    )
    assert kinds(report) == ["http_request", "notify", "update_record", "approval"]
    join = next(d["join"] for d in report.decisions if "join" in d)
    assert join["failed"] == ["check_velocity"]


def test_the_fraud_api_failing_after_its_retries_flags_the_cart():
    def overloaded(request: HttpRequest) -> HttpResponse:
        raise StepError("http_5xx", "busy", status_code=503)

    report = run("cart-fraud-detection", CART, ports=RecordingPorts(respond=overloaded))
    assert report.path == ("parallel_fraud_checks", "flag_for_review")
    attempts = [s.attempt for s in report.steps if s.step_id == "check_external_fraud_api"]
    assert attempts == [1, 2, 3]


@pytest.mark.parametrize(
    ("decision", "result"),
    [(ApprovalStatus.APPROVED, R.ALLOWED), (ApprovalStatus.REJECTED, R.BLOCKED)],
)
def test_the_analysts_decision_settles_a_flagged_cart(decision, result):
    payload = {**CART, "cart": {**CART["cart"], "total": 10}}
    report = run("cart-fraud-detection", payload, approvals={"flag_for_review": decision})
    assert (report.status, report.result) == (S.COMPLETED, result)


# --- quote-expiration-management ------------------------------------------------


def quote(hours, reminder_sent):
    return {
        "quote": {
            "id": "q-1",
            "number": "Q1",
            "hours_until_expiration": hours,
            "reminder_sent": reminder_sent,
            "customer_email": "c@example.com",
            "sales_rep_email": "rep@example.com",
            "total": 900,
        },
        "customer": {"name": "Acme", "id": "c-1"},
        "integrations": {"crm": {"webhook_url": "https://crm.example.com/hook"}},
    }


@pytest.mark.parametrize(
    ("hours", "reminder_sent", "path"),
    [
        (
            12,
            False,
            (
                "check_reminder_needed",
                "send_reminder",
                "check_expired",
                "continue_monitoring",
                "complete_workflow",
            ),
        ),
        (
            0,
            False,
            (
                "check_reminder_needed",
                "send_reminder",
                "check_expired",
                "expire_quote",
                "complete_workflow",
            ),
        ),
        (-3, True, ("check_reminder_needed", "check_expired", "expire_quote", "complete_workflow")),
        (
            72,
            False,
            ("check_reminder_needed", "check_expired", "continue_monitoring", "complete_workflow"),
        ),
    ],
)
def test_quote_expiration_paths_end_allowed(hours, reminder_sent, path):
    report = run("quote-expiration-management", quote(hours, reminder_sent))
    assert report.path == path
    assert report.result is R.ALLOWED


def test_an_expired_quote_gets_records_a_notification_and_a_webhook():
    report = run("quote-expiration-management", quote(-3, True))
    assert kinds(report) == ["update_record", "notify", "http_request", "create_record"]
    task = effects(report)[-1]["data"]
    assert task["due_date"] == (NOW + timedelta(hours=24)).isoformat()


def test_a_scheduled_run_without_a_quote_needs_no_reminder_and_nothing_expires():
    report = run("quote-expiration-management", {})
    assert report.path == (
        "check_reminder_needed",
        "check_expired",
        "continue_monitoring",
        "complete_workflow",
    )
    assert report.result is R.ALLOWED
    assert effects(report) == ()


# --- quote-multi-level-approval ------------------------------------------------

QUOTE = {
    "quote": {
        "id": "q-1",
        "number": "Q-1",
        "total": 8000,
        "discount_percentage": 5,
        "has_custom_pricing": False,
        "line_items": [1, 2, 3],
        "created_by_email": "me@example.com",
    },
    "customer": {"name": "Acme", "id": "c-1"},
    "sales_rep": {"id": "rep-1", "email": "rep@example.com", "slack_id": "@rep", "name": "Rita"},
    "sales_manager": {
        "id": "man-1",
        "email": "boss@example.com",
        "slack_id": "@boss",
        "name": "Max",
    },
    "integrations": {"crm": {"webhook_url": "https://crm.example.com/hook"}},
}
REP_APPROVED = {"quote": {"rep_decision": "approved", "rep_comments": "fine"}}
BOTH_APPROVALS = {
    "require_sales_rep_review": ApprovalStatus.APPROVED,
    "require_manager_approval": ApprovalStatus.APPROVED,
}


def test_a_small_quote_is_auto_approved():
    payload = {**QUOTE, "quote": {**QUOTE["quote"], "total": 100}}
    report = run("quote-multi-level-approval", payload)
    assert report.path == ("check_quote_value", "auto_approve_quote")
    assert report.result is R.ALLOWED


def test_a_large_quote_waits_for_the_sales_rep():
    report = run("quote-multi-level-approval", QUOTE)
    assert report.path == ("check_quote_value", "require_sales_rep_review")
    assert report.status is S.WAITING
    request = report.waiting["would_wait_for"]
    assert (request["approver_role"], request["expires_in"]) == ("sales_rep", "2d")
    assert effects(report)[0]["message"].endswith("Items: 3")


def test_once_the_rep_approves_the_quote_waits_for_the_rep_review_event():
    report = run("quote-multi-level-approval", QUOTE, approvals=BOTH_APPROVALS)
    assert report.path[-1] == "wait_for_rep_decision"
    assert report.waiting["kind"] == "event"
    assert report.waiting["would_wait_for"]["event"] == "quote.rep_reviewed"
    assert report.waiting["would_wait_for"]["timeout"] == "2d"


def test_both_stages_approved_approves_the_quote():
    events = {
        "wait_for_rep_decision": REP_APPROVED,
        "wait_for_manager_decision": {"quote": {"manager_decision": "approved"}},
    }
    report = run("quote-multi-level-approval", QUOTE, approvals=BOTH_APPROVALS, events=events)
    assert report.path == (
        "check_quote_value",
        "require_sales_rep_review",
        "wait_for_rep_decision",
        "check_rep_decision",
        "require_manager_approval",
        "wait_for_manager_decision",
        "check_manager_decision",
        "approve_quote",
    )
    assert (report.status, report.result) == (S.COMPLETED, R.ALLOWED)
    assert report.context["events"]["quote.rep_reviewed"] == REP_APPROVED


def test_the_manager_approval_waits_for_the_manager_review_event():
    report = run(
        "quote-multi-level-approval",
        QUOTE,
        approvals=BOTH_APPROVALS,
        events={"wait_for_rep_decision": REP_APPROVED},
    )
    assert report.path[-2:] == ("require_manager_approval", "wait_for_manager_decision")
    assert report.waiting["would_wait_for"]["event"] == "quote.manager_reviewed"


def test_a_rep_rejection_blocks_with_the_reason_from_the_event():
    events = {
        "wait_for_rep_decision": {
            "quote": {"rep_decision": "rejected", "rep_rejection_reason": "margin"}
        }
    }
    report = run("quote-multi-level-approval", QUOTE, approvals=BOTH_APPROVALS, events=events)
    assert report.path[-1] == "handle_rep_rejection"
    assert report.result is R.BLOCKED
    assert report.message == "Quote rejected by sales rep: margin"


def test_a_manager_rejection_blocks_with_the_reason_from_the_event():
    events = {
        "wait_for_rep_decision": REP_APPROVED,
        "wait_for_manager_decision": {
            "quote": {"manager_decision": "rejected", "manager_rejection_reason": "too deep"}
        },
    }
    report = run("quote-multi-level-approval", QUOTE, approvals=BOTH_APPROVALS, events=events)
    assert report.path[-1] == "handle_manager_rejection"
    assert (report.result, report.message) == (
        R.BLOCKED,
        "Quote rejected by sales manager: too deep",
    )


def test_a_rejected_rep_approval_blocks_the_quote():
    report = run(
        "quote-multi-level-approval",
        QUOTE,
        approvals={"require_sales_rep_review": ApprovalStatus.REJECTED},
    )
    assert (report.status, report.result) == (S.COMPLETED, R.BLOCKED)


def test_a_rep_review_event_that_never_comes_times_out():
    report = run(
        "quote-multi-level-approval",
        QUOTE,
        approvals=BOTH_APPROVALS,
        events={"wait_for_rep_decision": None},
    )
    assert (report.status, report.result, report.error_type) == (
        S.FAILED,
        R.FAILED,
        ErrorType.TIMEOUT,
    )


def test_reports_serialise_to_plain_data():
    data = run("high-value-order-approval", ORDER).to_dict()
    assert data["status"] == "waiting"
    assert data["path"] == ["check_order_value", "check_customer_tier", "require_approval"]
