"""What an approval's decision or expiry announcement says, to whom, and when a failed
one is tried again (pure: no database, no SMTP)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from models.execution import Approval
from tasks.approvals import (
    NOTIFY_GIVE_UP,
    NOTIFY_RETRY_MAX,
    NOTIFY_RETRY_MIN,
    decision_notice,
    retry_notification_at,
)

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def approval(**fields: object) -> Approval:
    values: dict[str, object] = {
        "id": uuid.UUID("00000000-0000-0000-0000-0000000000a1"),
        "execution_id": uuid.UUID("00000000-0000-0000-0000-0000000000e1"),
        "organization_id": uuid.uuid4(),
        "workflow_id": "high_value_order_approval",
        "step_id": "require_approval",
        "entity_type": "order",
        "entity_id": "ord-7",
        "approver_role": "sales_manager",
        "status": "approved",
        "reason": "High value order requires approval",
        "decision_reason": None,
        "decided_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
    }
    values.update(fields)
    return Approval(**values)


def test_an_approval_names_the_decider_the_reason_and_links_the_approval() -> None:
    notice = decision_notice(
        approval(decision_reason="within budget"),
        decider="maria",
        requester="ada@example.com",
        public_url="https://flows.example.com/",
    )
    assert notice.subject == "Approval approved: order ord-7"
    assert notice.recipients == ("role:sales_manager", "ada@example.com")
    assert notice.message.splitlines() == [
        "The approval request for order ord-7 (sales_manager) was approved by maria."
        " Reason: within budget",
        "Requested because: High value order requires approval",
        "Workflow high_value_order_approval, step require_approval,"
        " execution 00000000-0000-0000-0000-0000000000e1.",
        "Approval: https://flows.example.com/approvals/00000000-0000-0000-0000-0000000000a1",
    ]
    assert notice.idempotency_key == "approval:00000000-0000-0000-0000-0000000000a1:approved"


def test_a_rejection_without_entity_or_requester_goes_to_the_group_only() -> None:
    notice = decision_notice(
        approval(status="rejected", entity_type=None, entity_id=None, reason=None),
        decider="maria",
        requester=None,
        public_url="",
    )
    assert notice.subject == "Approval rejected: step require_approval"
    assert notice.recipients == ("role:sales_manager",)
    assert notice.message.startswith(
        "The approval request for step require_approval (sales_manager) was rejected by maria."
    )
    assert "Requested because" not in notice.message
    assert notice.idempotency_key.endswith(":rejected")


def test_an_expiry_says_when_it_expired_and_names_no_decider() -> None:
    expired_at = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    notice = decision_notice(
        approval(status="expired", expires_at=expired_at, decided_at=expired_at),
        decider=None,
        requester="ada@example.com",
        public_url="https://flows.example.com",
    )
    assert notice.subject == "Approval expired: order ord-7"
    assert "(sales_manager) expired at 2026-12-03 09:30 UTC without a decision." in notice.message
    assert " by " not in notice.message.splitlines()[0]


@pytest.mark.parametrize(
    ("failing_for", "expected_delay"),
    [
        (timedelta(0), NOTIFY_RETRY_MIN),
        (timedelta(minutes=5), timedelta(minutes=5)),
        (timedelta(hours=5), NOTIFY_RETRY_MAX),
    ],
)
def test_a_failed_announcement_is_retried_after_as_long_as_it_has_been_failing(
    failing_for: timedelta, expected_delay: timedelta
) -> None:
    decided = approval(decided_at=NOW - failing_for)
    assert retry_notification_at(decided, NOW) == NOW + expected_delay


def test_a_failed_announcement_is_abandoned_a_day_after_the_decision() -> None:
    assert retry_notification_at(approval(decided_at=NOW - NOTIFY_GIVE_UP), NOW) is None


def test_an_email_keeps_its_message_id_when_sent_again() -> None:
    from tasks.notifier import message_id

    first = message_id("approval:a1:approved", "rep@example.com", "workflows@corp.example")
    again = message_id("approval:a1:approved", "rep@example.com", "workflows@corp.example")
    other = message_id("approval:a1:approved", "boss@example.com", "workflows@corp.example")

    assert first == again
    assert other != first
    assert first.startswith("<") and first.endswith("@corp.example>")
