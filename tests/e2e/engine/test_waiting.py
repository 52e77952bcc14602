"""Every waiting branch of the shipped examples, end to end on the real stack (gunicorn,
Celery worker, beat): approvals approved, rejected and expired; events that arrive and
events that never do; and a worker killed (kill -9, whole process group) while
executions wait.

Approvals are decided through the HTTP approvals API by a member holding the
approval group; events are sent through POST /events. 24 h expiries and 48 h
timeouts are made due by moving their due-time in Postgres into the past: the real
beat jobs (every second here) fire them. Each test checks the final state, the path,
the decision in the context, the trace, and what went out: HTTP calls, records,
emails (including the decision and expiry announcements) and the notifications
recorded for them.
"""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.e2e.engine.team import (
    Team,
    announcement,
    announcements_recorded,
    approval_at,
    body_of,
    decide,
    expire_now,
    ledger,
    lifetime,
    mails,
    make_team,
    notifications,
    only_execution,
    park,
    record,
    step_runs,
    time_out_now,
    uid,
)
from tests.e2e.stack import Stack
from tests.integration.engine.sinks import HttpSink, SmtpSink, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def team(engine_stack: Stack) -> Team:
    """A fresh organization per test: a wait without `match` takes the next event of its
    type in the organization, so tests must not share one."""
    return make_team(engine_stack)


def assert_announced(
    smtp: SmtpSink,
    db: Engine,
    team: Team,
    approval: dict[str, Any],
    status: str,
    timeout: float = 20,
    *,
    redelivery: bool = False,
) -> None:
    """The decision or expiry reached the approval group and the requester by email, once
    each, and each delivery is recorded as sent."""
    group = approval["approver_role"]
    addresses = sorted([team.members[group].email, team.admin.email])
    for address in addresses:
        announcement(smtp, address, approval["id"], status, timeout, redelivery=redelivery)

    def recorded() -> list[tuple[str, str, str]]:
        rows = announcements_recorded(db, approval["execution_id"], approval["step_id"])
        return [row for row in rows if row[0].startswith(f"Approval {status}:")]

    expected_subject = f"Approval {status}: {approval['entity_type']} {approval['entity_id']}"
    # A copy sent before a kill can arrive long before its record: the record comes
    # with the copy the expiry job sends once NOTIFY_GRACE (30 s) has passed.
    assert wait_for(lambda: len(recorded()) == len(addresses), timeout=timeout)
    assert recorded() == [(expected_subject, address, "sent") for address in addresses]


# --- high-value-order-approval ------------------------------------------------------------
HIGH_VALUE_PATH = ["check_order_value", "check_customer_tier", "require_approval"]


@dataclass
class Order:
    execution_id: str
    order_id: str
    approval: dict[str, Any]


def order_waiting_for_a_manager(team: Team, http: HttpSink, smtp: SmtpSink) -> Order:
    team.deploy("high-value-order-approval", http.url)
    order_id = uid("ord")
    payload = {
        "order": {"id": order_id, "total": 25000, "items": [1, 2, 3]},
        "customer": {"tier": "silver", "name": "Ada"},
    }
    execution_id = only_execution(team.api.send("order.checkout.initiated", payload))
    body = park(team.api, execution_id, "require_approval")
    assert body["result"] == "blocked"  # provisional until decided
    approval = approval_at(team.api, execution_id, "require_approval")
    assert (approval["approver_role"], approval["status"]) == ("sales_manager", "pending")
    assert lifetime(approval) == timedelta(hours=24)
    # The request itself, by the workflow's own notify items: the group by email, Slack.
    manager = team.members["sales_manager"]
    [request] = wait_for(lambda: mails(smtp, manager.email, f"Order {order_id} requires"))
    assert f"/approvals/{approval['id']}" in body_of(request)
    return Order(execution_id, order_id, approval)


def assert_order_notified(db: Engine, http: HttpSink, team: Team, order: Order) -> None:
    slack = [c for c in http.calls("/slack") if order.order_id in str(c.body)]
    assert [c.body["channel"] for c in slack] == ["#sales-approvals"]
    requested = sorted(
        (row["channel"], row["recipient"], row["status"])
        for row in notifications(db, order.execution_id)
        if not (row["subject"] or "").startswith("Approval ")
    )
    manager = team.members["sales_manager"].email
    assert requested == [("email", manager, "sent"), ("slack", "#sales-approvals", "sent")]


def test_a_high_value_order_approved_by_a_sales_manager_is_allowed(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    order = order_waiting_for_a_manager(team, http_sink, smtp_sink)
    approval_id = order.approval["id"]
    # Only the approval group may decide: a sales rep is refused.
    refused = team.members["sales_rep"].api.post(f"/approvals/{approval_id}/approve", {})
    assert refused.status_code == 403, refused.text

    manager = team.members["sales_manager"]
    decided = decide(manager, approval_id, "approve", "Known customer")
    assert (decided["status"], decided["decision_reason"]) == ("approved", "Known customer")

    body = team.api.settle(order.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "allowed", None)
    assert team.api.path(order.execution_id) == HIGH_VALUE_PATH
    decision = body["context"]["approvals"]["require_approval"]
    assert (decision["status"], decision["approver"], decision["reason"]) == (
        "approved",
        manager.username,
        "Known customer",
    )
    assert step_runs(team.api, order.execution_id) == [(s, 1, "completed") for s in HIGH_VALUE_PATH]
    assert_announced(smtp_sink, db, team, order.approval, "approved")
    assert_order_notified(db, http_sink, team, order)


def test_a_high_value_order_rejected_by_a_sales_manager_is_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    order = order_waiting_for_a_manager(team, http_sink, smtp_sink)
    manager = team.members["sales_manager"]
    decide(manager, order.approval["id"], "reject", "Credit limit exceeded")

    body = team.api.settle(order.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "blocked", None)
    assert team.api.path(order.execution_id) == HIGH_VALUE_PATH
    decision = body["context"]["approvals"]["require_approval"]
    assert (decision["status"], decision["reason"]) == ("rejected", "Credit limit exceeded")
    mail = announcement(smtp_sink, manager.email, order.approval["id"], "rejected")
    assert f"rejected by {manager.username}. Reason: Credit limit exceeded" in body_of(mail)
    assert_announced(smtp_sink, db, team, order.approval, "rejected")
    assert_order_notified(db, http_sink, team, order)


def test_a_high_value_order_nobody_decides_expires_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    order = order_waiting_for_a_manager(team, http_sink, smtp_sink)
    expire_now(db, order.approval["id"])  # 24 h later, as far as the expiry job knows

    body = team.api.settle(order.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == (
        "completed",
        "blocked",
        "timeout",
    )
    assert team.api.path(order.execution_id) == HIGH_VALUE_PATH
    decision = body["context"]["approvals"]["require_approval"]
    assert (decision["status"], decision["approver"]) == ("expired", None)
    expired = team.api.get(f"/approvals/{order.approval['id']}").json()
    assert expired["status"] == "expired"
    late = team.members["sales_manager"].api.post(f"/approvals/{expired['id']}/approve", {})
    assert late.status_code == 409
    assert_announced(smtp_sink, db, team, order.approval, "expired")
    assert_order_notified(db, http_sink, team, order)


# --- cart-fraud-detection: the review branch -------------------------------------------------
@dataclass
class Cart:
    execution_id: str
    customer_id: str
    approval: dict[str, Any]


def cart_flagged_for_review(team: Team, db: Engine, http: HttpSink) -> Cart:
    team.deploy("cart-fraud-detection", http.url)
    customer_id = uid("cust")
    payload = {
        "cart": {"id": uid("cart"), "total": 120, "shipping_address": {"country": "FR"}},
        "customer": {
            "id": customer_id,
            "carts_created_last_hour": 9,  # the velocity check fails: flag for review
            "account_age_days": 300,
            "billing_address": {"country": "FR"},
            "verified": True,
        },
        "device": {"fingerprint": "fp-9"},
    }
    execution_id = only_execution(team.api.send("cart.checkout.started", payload))
    park(team.api, execution_id, "flag_for_review")
    approval = approval_at(team.api, execution_id, "flag_for_review")
    assert approval["approver_role"] == "fraud_analyst"
    assert approval["entity_id"] == payload["cart"]["id"]
    assert lifetime(approval) == timedelta(hours=4)
    # The flag's other items ran before it waited: the customer record, and the pager
    # notification recorded as skipped (no such channel), not as sent.
    assert record(team.api, "customer", customer_id)["fraud_flag"] is True
    [pager] = [row for row in notifications(db, execution_id) if row["channel"] == "other"]
    assert (pager["recipient"], pager["status"]) == ("pagerduty:fraud-team", "skipped")
    return Cart(execution_id, customer_id, approval)


def assert_reviewed_path(team: Team, cart: Cart) -> None:
    runs = step_runs(team.api, cart.execution_id)
    assert runs == [("parallel_fraud_checks", 1, "failed"), ("flag_for_review", 1, "completed")]


def test_a_flagged_cart_cleared_by_a_fraud_analyst_checks_out(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    cart = cart_flagged_for_review(team, db, http_sink)
    analyst = team.members["fraud_analyst"]
    decide(analyst, cart.approval["id"], "approve", "Office party order")
    body = team.api.settle(cart.execution_id)
    # The approval settles the step's provisional block: allowed.
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "allowed", None)
    assert body["context"]["approvals"]["flag_for_review"]["approver"] == analyst.username
    assert_reviewed_path(team, cart)
    assert_announced(smtp_sink, db, team, cart.approval, "approved")


def test_a_flagged_cart_rejected_by_a_fraud_analyst_stays_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    cart = cart_flagged_for_review(team, db, http_sink)
    decide(team.members["fraud_analyst"], cart.approval["id"], "reject", "Stolen card")
    body = team.api.settle(cart.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "blocked", None)
    assert body["context"]["approvals"]["flag_for_review"]["status"] == "rejected"
    assert_reviewed_path(team, cart)
    assert_announced(smtp_sink, db, team, cart.approval, "rejected")


def test_a_flagged_cart_nobody_reviews_expires_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    cart = cart_flagged_for_review(team, db, http_sink)
    expire_now(db, cart.approval["id"])
    body = team.api.settle(cart.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == (
        "completed",
        "blocked",
        "timeout",
    )
    assert body["context"]["approvals"]["flag_for_review"]["status"] == "expired"
    assert_reviewed_path(team, cart)
    assert_announced(smtp_sink, db, team, cart.approval, "expired")


# --- quote-multi-level-approval: two approvals, each followed by a wait for an event --------
STAGE_ONE = ["check_quote_value", "require_sales_rep_review"]
STAGE_TWO = [*STAGE_ONE, "wait_for_rep_decision", "check_rep_decision", "require_manager_approval"]
TO_MANAGER_DECISION = [*STAGE_TWO, "wait_for_manager_decision", "check_manager_decision"]


@dataclass
class Quote:
    execution_id: str
    payload: dict[str, Any]
    tag: str

    @property
    def id(self) -> str:
        return str(self.payload["quote"]["id"])

    @property
    def number(self) -> str:
        return str(self.payload["quote"]["number"])

    @property
    def author(self) -> str:
        return str(self.payload["quote"]["created_by_email"])


def quote_waiting_for_the_rep(team: Team, http: HttpSink, smtp: SmtpSink) -> Quote:
    team.deploy("quote-multi-level-approval", http.url)
    tag = uid("t")
    rep, manager = team.members["sales_rep"], team.members["sales_manager"]
    payload = {
        "quote": {
            "id": uid("q"),
            "number": uid("Q"),
            "total": 9000,
            "discount_percentage": 20,
            "has_custom_pricing": False,
            "line_items": [{"sku": "A"}, {"sku": "B"}],
            "created_by_email": f"author-{tag}@example.com",
        },
        "customer": {"id": uid("c"), "name": "Initech"},
        "sales_rep": {"id": "rep-7", "name": "Rita", "email": rep.email, "slack_id": f"@r{tag}"},
        "sales_manager": {
            "id": "mgr-3",
            "name": "Max",
            "email": manager.email,
            "slack_id": f"@m{tag}",
        },
        "integrations": {"crm": {"webhook_url": f"{http.url}/crm-{tag}"}},
    }
    execution_id = only_execution(team.api.send("quote.created", payload))
    quote = Quote(execution_id, payload, tag)
    park(team.api, execution_id, "require_sales_rep_review")
    assert record(team.api, "quote", quote.id)["status"] == "pending_rep_review"
    wait_for(lambda: mails(smtp, rep.email, f"Quote {quote.number} requires your review"))
    assert [c.body["channel"] for c in http.calls("/slack") if tag in str(c.body)] == [f"@r{tag}"]
    approval = approval_at(team.api, execution_id, "require_sales_rep_review")
    assert approval["approver_role"] == "sales_rep"
    assert approval["data"]["stage"] == "sales_rep_review"
    assert lifetime(approval) == timedelta(hours=48)
    return quote


def review(team: Team, quote: Quote, event_type: str, decision: dict[str, Any]) -> None:
    """The rep's or manager's verdict arriving as an event (POST /events)."""
    accepted = team.api.send(event_type, {"quote": {"id": quote.id, **decision}})
    assert accepted["execution_ids"] == []  # it starts nothing: it resumes the waiting one


def quote_waiting_for_the_manager(
    team: Team, db: Engine, http: HttpSink, smtp: SmtpSink
) -> tuple[Quote, dict[str, Any]]:
    """Stage 1 approved, the rep's approving review received: stage 2 waits."""
    quote = quote_waiting_for_the_rep(team, http, smtp)
    stage_one = approval_at(team.api, quote.execution_id, "require_sales_rep_review")
    decide(team.members["sales_rep"], stage_one["id"], "approve", "Margin is fine")
    park(team.api, quote.execution_id, "wait_for_rep_decision")
    review(team, quote, "quote.rep_reviewed", {"rep_decision": "approved", "rep_comments": "ok"})
    body = park(team.api, quote.execution_id, "require_manager_approval")
    assert body["context"]["quote"]["rep_decision"] == "approved"
    assert body["context"]["events"]["quote.rep_reviewed"]["quote"]["rep_comments"] == "ok"
    assert record(team.api, "quote", quote.id)["status"] == "pending_manager_approval"
    stage_two = approval_at(team.api, quote.execution_id, "require_manager_approval")
    assert stage_two["approver_role"] == "sales_manager"
    assert lifetime(stage_two) == timedelta(hours=24)
    manager = team.members["sales_manager"].email
    wait_for(lambda: mails(smtp, manager, f"Quote {quote.number} needs manager approval"))
    assert_announced(smtp, db, team, stage_one, "approved")
    return quote, stage_two


def test_a_quote_approved_at_both_stages_goes_to_the_customer(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote, stage_two = quote_waiting_for_the_manager(team, db, http_sink, smtp_sink)
    manager = team.members["sales_manager"]
    decide(manager, stage_two["id"], "approve", "Ship it")
    park(team.api, quote.execution_id, "wait_for_manager_decision")
    review(
        team,
        quote,
        "quote.manager_reviewed",
        {"manager_decision": "approved", "manager_comments": "Nice deal"},
    )

    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "allowed", None)
    assert team.api.path(quote.execution_id) == [*TO_MANAGER_DECISION, "approve_quote"]
    approvals = body["context"]["approvals"]
    assert approvals["require_sales_rep_review"]["approver"] == team.members["sales_rep"].username
    stage_two_decision = approvals["require_manager_approval"]
    assert (stage_two_decision["status"], stage_two_decision["approver"]) == (
        "approved",
        manager.username,
    )
    assert body["context"]["quote"]["manager_decision"] == "approved"
    stored = record(team.api, "quote", quote.id)
    assert (stored["status"], stored["ready_to_send"], stored["approved_by"]) == (
        "approved",
        True,
        "mgr-3",
    )
    [crm] = http_sink.calls(f"/crm-{quote.tag}")
    assert (crm.body["event"], crm.body["quote_id"]) == ("quote_approved", quote.id)
    rep = team.members["sales_rep"].email
    assert len(mails(smtp_sink, rep, f"Quote {quote.number} fully approved")) == 1
    assert_announced(smtp_sink, db, team, stage_two, "approved")


def test_a_quote_rejected_by_the_rep_at_stage_one_is_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote = quote_waiting_for_the_rep(team, http_sink, smtp_sink)
    stage_one = approval_at(team.api, quote.execution_id, "require_sales_rep_review")
    decide(team.members["sales_rep"], stage_one["id"], "reject", "Discount too deep")
    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "blocked", None)
    assert team.api.path(quote.execution_id) == STAGE_ONE
    decision = body["context"]["approvals"]["require_sales_rep_review"]
    assert (decision["status"], decision["reason"]) == ("rejected", "Discount too deep")
    assert record(team.api, "quote", quote.id)["status"] == "pending_rep_review"
    assert_announced(smtp_sink, db, team, stage_one, "rejected")
    asked = team.api.get("/approvals", params={"execution_id": quote.execution_id}).json()
    assert [a["step_id"] for a in asked["approvals"]] == ["require_sales_rep_review"]


def assert_expires_blocked(
    team: Team,
    db: Engine,
    smtp_sink: SmtpSink,
    execution_id: str,
    approval: dict[str, Any],
    path: list[str],
) -> None:
    """Expire the approval now: the beat job settles the quote as blocked by a timeout,
    with the expiry in the context and announced."""
    expire_now(db, approval["id"])
    body = team.api.settle(execution_id)
    assert (body["status"], body["result"], body["error_type"]) == (
        "completed",
        "blocked",
        "timeout",
    )
    assert team.api.path(execution_id) == path
    assert body["context"]["approvals"][approval["step_id"]]["status"] == "expired"
    assert_announced(smtp_sink, db, team, approval, "expired")


def test_a_quote_the_rep_never_reviews_expires_at_stage_one(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote = quote_waiting_for_the_rep(team, http_sink, smtp_sink)
    stage_one = approval_at(team.api, quote.execution_id, "require_sales_rep_review")
    assert_expires_blocked(team, db, smtp_sink, quote.execution_id, stage_one, STAGE_ONE)


def test_a_quote_whose_rep_review_event_never_comes_times_out(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote = quote_waiting_for_the_rep(team, http_sink, smtp_sink)
    stage_one = approval_at(team.api, quote.execution_id, "require_sales_rep_review")
    decide(team.members["sales_rep"], stage_one["id"], "approve")
    park(team.api, quote.execution_id, "wait_for_rep_decision")
    timeout = time_out_now(db, quote.execution_id, "wait_for_rep_decision")
    assert abs(timeout - timedelta(hours=48)) < timedelta(seconds=5)

    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("failed", "failed", "timeout")
    assert "quote.rep_reviewed" in body["error_message"]
    assert team.api.path(quote.execution_id) == [*STAGE_ONE, "wait_for_rep_decision"]
    assert "events" not in body["context"]
    assert_announced(smtp_sink, db, team, stage_one, "approved")


def test_a_quote_the_rep_turns_down_by_event_is_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote = quote_waiting_for_the_rep(team, http_sink, smtp_sink)
    stage_one = approval_at(team.api, quote.execution_id, "require_sales_rep_review")
    decide(team.members["sales_rep"], stage_one["id"], "approve")
    park(team.api, quote.execution_id, "wait_for_rep_decision")
    review(
        team,
        quote,
        "quote.rep_reviewed",
        {"rep_decision": "rejected", "rep_rejection_reason": "Wrong customer tier"},
    )
    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    path = [*STAGE_ONE, "wait_for_rep_decision", "check_rep_decision", "handle_rep_rejection"]
    assert team.api.path(quote.execution_id) == path
    stored = record(team.api, "quote", quote.id)
    assert (stored["status"], stored["rejection_reason"]) == (
        "rejected_by_rep",
        "Wrong customer tier",
    )
    [told] = wait_for(lambda: mails(smtp_sink, quote.author, "Reason: Wrong customer tier"))
    assert f"Quote {quote.number}" in told.content


def test_a_quote_rejected_by_the_manager_at_stage_two_is_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote, stage_two = quote_waiting_for_the_manager(team, db, http_sink, smtp_sink)
    decide(team.members["sales_manager"], stage_two["id"], "reject", "Not this quarter")
    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("completed", "blocked", None)
    assert team.api.path(quote.execution_id) == STAGE_TWO
    decision = body["context"]["approvals"]["require_manager_approval"]
    assert (decision["status"], decision["reason"]) == ("rejected", "Not this quarter")
    assert body["context"]["approvals"]["require_sales_rep_review"]["status"] == "approved"
    assert_announced(smtp_sink, db, team, stage_two, "rejected")
    assert http_sink.calls(f"/crm-{quote.tag}") == []


def test_a_quote_the_manager_never_decides_expires_at_stage_two(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote, stage_two = quote_waiting_for_the_manager(team, db, http_sink, smtp_sink)
    assert_expires_blocked(team, db, smtp_sink, quote.execution_id, stage_two, STAGE_TWO)


def test_a_quote_whose_manager_review_event_never_comes_times_out(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote, stage_two = quote_waiting_for_the_manager(team, db, http_sink, smtp_sink)
    decide(team.members["sales_manager"], stage_two["id"], "approve")
    park(team.api, quote.execution_id, "wait_for_manager_decision")
    timeout = time_out_now(db, quote.execution_id, "wait_for_manager_decision")
    assert abs(timeout - timedelta(hours=24)) < timedelta(seconds=5)
    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"], body["error_type"]) == ("failed", "failed", "timeout")
    assert "quote.manager_reviewed" in body["error_message"]
    assert team.api.path(quote.execution_id) == [*STAGE_TWO, "wait_for_manager_decision"]
    assert http_sink.calls(f"/crm-{quote.tag}") == []


def test_a_quote_the_manager_turns_down_by_event_is_blocked(
    team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote, stage_two = quote_waiting_for_the_manager(team, db, http_sink, smtp_sink)
    decide(team.members["sales_manager"], stage_two["id"], "approve")
    park(team.api, quote.execution_id, "wait_for_manager_decision")
    review(
        team,
        quote,
        "quote.manager_reviewed",
        {"manager_decision": "rejected", "manager_rejection_reason": "Margin too thin"},
    )
    body = team.api.settle(quote.execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    assert team.api.path(quote.execution_id) == [*TO_MANAGER_DECISION, "handle_manager_rejection"]
    assert record(team.api, "quote", quote.id)["status"] == "rejected_by_manager"
    rep = team.members["sales_rep"].email
    for address in (rep, quote.author):
        wait_for(lambda address=address: mails(smtp_sink, address, "Reason: Margin too thin"))
    slack = [c.body for c in http_sink.calls("/slack") if quote.number in str(c.body)]
    assert [s["channel"] for s in slack if "rejected" in s["text"]] == ["#sales-notifications"]


# --- a worker killed while executions wait ---------------------------------------------------
def is_running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_worker(stack: Stack) -> None:
    """kill -9 the worker's whole process group: the main process and its pool."""
    pids = [stack.processes["worker"].pid, *stack.children("worker")]
    assert len(pids) >= 3  # the main process and its two pool processes
    stack.stop("worker", sig=signal.SIGKILL)
    wait_for(lambda: not any(is_running(pid) for pid in pids), timeout=10)


def restart_worker(stack: Stack) -> None:
    stack.start_worker()
    stack.wait_worker()


def test_a_worker_killed_while_a_quote_waits_loses_nothing(
    engine_stack: Stack, team: Team, db: Engine, http_sink: HttpSink, smtp_sink: SmtpSink
) -> None:
    quote = quote_waiting_for_the_rep(team, http_sink, smtp_sink)
    rep, manager = team.members["sales_rep"], team.members["sales_manager"]
    try:
        # Killed while waiting for an approval; decided once a new worker runs.
        kill_worker(engine_stack)
        restart_worker(engine_stack)
        stage_one = approval_at(team.api, quote.execution_id, "require_sales_rep_review")
        decide(rep, stage_one["id"], "approve")
        park(team.api, quote.execution_id, "wait_for_rep_decision")
        # Killed while waiting for an event, which arrives while no worker runs at all:
        # it is committed with the execution's next step, which waits for a worker.
        kill_worker(engine_stack)
        review(team, quote, "quote.rep_reviewed", {"rep_decision": "approved"})
        resumed = team.api.execution(quote.execution_id)
        assert (resumed["status"], resumed["current_step_id"]) == ("running", "check_rep_decision")
    finally:
        if "worker" not in engine_stack.processes:
            restart_worker(engine_stack)
    park(team.api, quote.execution_id, "require_manager_approval", timeout=60)
    stage_two = approval_at(team.api, quote.execution_id, "require_manager_approval")
    decide(manager, stage_two["id"], "approve")
    park(team.api, quote.execution_id, "wait_for_manager_decision")
    review(team, quote, "quote.manager_reviewed", {"manager_decision": "approved"})
    body = team.api.settle(quote.execution_id, timeout=60)

    # Completed once: one completed step-run per step, each effect in the ledger once,
    # and every outside call and email received exactly once.
    assert (body["status"], body["result"]) == ("completed", "allowed")
    expected = [*TO_MANAGER_DECISION, "approve_quote"]
    assert step_runs(team.api, quote.execution_id) == [(s, 1, "completed") for s in expected]
    # A kill can take the task that announces stage 1's decision with it: the decision
    # still owes its announcement, which the expiry job sends after NOTIFY_GRACE (30 s).
    # A kill between an email's send and its ledger entry sends it again (SMTP has no
    # idempotency), with the same Message-ID: one message for the recipient.
    assert_announced(smtp_sink, db, team, stage_one, "approved", timeout=60, redelivery=True)
    assert_announced(smtp_sink, db, team, stage_two, "approved")
    assert Counter(ledger(db, quote.execution_id)) == Counter(
        {
            # request: email + Slack to the rep; decision: the rep and the requester
            ("require_sales_rep_review", "notify:email"): 3,
            ("require_sales_rep_review", "notify:slack"): 1,
            # request: manager and rep + Slack; decision: the manager and the requester
            ("require_manager_approval", "notify:email"): 4,
            ("require_manager_approval", "notify:slack"): 1,
            ("approve_quote", "notify:email"): 1,
            ("approve_quote", "notify:slack"): 1,
            ("approve_quote", "http"): 1,
        }
    )
    assert len(http_sink.calls(f"/crm-{quote.tag}")) == 1
    assert len(mails(smtp_sink, rep.email, f"Quote {quote.number} requires your review")) == 1
    assert len(mails(smtp_sink, rep.email, f"Quote {quote.number} fully approved")) == 1
    rows = notifications(db, quote.execution_id)
    sent = Counter((row["recipient"], row["message"]) for row in rows)
    assert max(sent.values()) == 1, sent
