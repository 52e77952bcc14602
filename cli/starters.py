"""Starter workflows for `iwctl templates`: each one validates with the engine as is.

They are plain data, written in the wrapped layout; `templates init` prints or
writes one so that it can be edited, validated and deployed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Starter:
    name: str
    summary: str
    workflow: dict[str, Any]

    def render(self, workflow_id: str | None = None) -> dict[str, Any]:
        workflow = copy.deepcopy(self.workflow)
        if workflow_id:
            workflow["workflow_id"] = workflow_id
        return workflow


HELLO = Starter(
    "hello",
    "Manual trigger: set a value and log it (runs anywhere, no outside services)",
    {
        "workflow_id": "hello",
        "version": "1.0.0",
        "name": "Hello",
        "description": 'Start it with `iwctl run hello --payload \'{"name": "Ada"}\'`.',
        "tags": ["starter"],
        "definition": {
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "greet",
                    "type": "execute",
                    "execute": [
                        {"type": "set", "values": {"greeting": "Hello, {{ name }}!"}},
                        {"type": "log", "message": "{{ greeting }}"},
                    ],
                }
            ],
        },
    },
)

EVENT_NOTIFY = Starter(
    "event-notify",
    "On an event, notify by email and Slack when a condition holds, else log it",
    {
        "workflow_id": "order-notify",
        "version": "1.0.0",
        "name": "Notify on large orders",
        "description": "Tell the customer and #sales about orders of 1000 or more.",
        "tags": ["starter", "orders"],
        "definition": {
            "trigger": {"type": "event", "event": "order.created"},
            "steps": [
                {
                    "id": "is_large",
                    "type": "condition",
                    "condition": {"field": "order.total", "operator": "gte", "value": 1000},
                    "on_true": "notify",
                    "on_false": "log_small",
                },
                {
                    "id": "notify",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "notify",
                            "recipients": ["email:{{ order.customer_email }}"],
                            "subject": "Order {{ order.id }} received",
                            "message": "Thank you! We received order {{ order.id }}.",
                        },
                        {
                            "type": "notify",
                            "recipients": ["slack:#sales"],
                            "message": "Large order {{ order.id }}: {{ order.total }}",
                        },
                    ],
                },
                {
                    "id": "log_small",
                    "type": "execute",
                    "execute": [{"type": "log", "message": "Order {{ order.id }} is small"}],
                },
            ],
        },
    },
)

APPROVAL = Starter(
    "approval",
    "Ask an approval group to decide large requests; record the outcome",
    {
        "workflow_id": "expense-approval",
        "version": "1.0.0",
        "name": "Expense approval",
        "description": "Expenses over 500 wait for the finance group; others pass.",
        "tags": ["starter", "approval"],
        "definition": {
            "trigger": {"type": "event", "event": "expense.submitted"},
            "steps": [
                {
                    "id": "needs_approval",
                    "type": "condition",
                    "condition": {"field": "expense.amount", "operator": "gt", "value": 500},
                    "on_true": "ask_finance",
                    "on_false": "approved",
                },
                {
                    "id": "ask_finance",
                    "type": "action",
                    "action": {"type": "require_approval", "reason": "Expense over 500"},
                    "execute": [
                        {
                            "type": "create_approval_request",
                            "entity": "expense",
                            "entity_id": "{{ expense.id }}",
                            "data": {
                                "approver_role": "finance",
                                "expires_in": "48h",
                                "reason": "Expense {{ expense.id }}: {{ expense.amount }}",
                            },
                        }
                    ],
                    "on_approve": "approved",
                    "on_reject": "rejected",
                },
                {
                    "id": "approved",
                    "type": "action",
                    "action": {"type": "allow"},
                    "execute": [
                        {
                            "type": "create_record",
                            "entity": "expense",
                            "entity_id": "{{ expense.id }}",
                            "data": {"status": "approved", "amount": "{{ expense.amount }}"},
                        }
                    ],
                },
                {
                    "id": "rejected",
                    "type": "action",
                    "action": {"type": "block", "reason": "Rejected by finance"},
                    "execute": [
                        {
                            "type": "create_record",
                            "entity": "expense",
                            "entity_id": "{{ expense.id }}",
                            "data": {"status": "rejected"},
                        }
                    ],
                },
            ],
        },
    },
)

WEBHOOK_RETRY = Starter(
    "webhook-retry",
    "Call a webhook with retries and exponential backoff; record a failure",
    {
        "workflow_id": "invoice-webhook",
        "version": "1.0.0",
        "name": "Forward paid invoices",
        "description": "POST each paid invoice to the ledger; retry 5xx and network errors.",
        "tags": ["starter", "webhook"],
        "definition": {
            "trigger": {"type": "event", "event": "invoice.paid"},
            "steps": [
                {
                    "id": "forward",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "webhook",
                            "url": "https://ledger.example.com/invoices",
                            "method": "POST",
                            "headers": {"Content-Type": "application/json"},
                            "body": {
                                "invoice_id": "{{ invoice.id }}",
                                "total": "{{ invoice.total }}",
                            },
                            "timeout": "10s",
                        }
                    ],
                    "retry": {
                        "max_attempts": 5,
                        "backoff": "exponential",
                        "initial_interval": "2s",
                        "max_interval": "1m",
                        "jitter": True,
                        "retry_on": ["5xx", "connection", "timeout"],
                    },
                    "on_error": "record_failure",
                },
                {
                    "id": "record_failure",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "create_record",
                            "entity": "invoice_forwarding",
                            "entity_id": "{{ invoice.id }}",
                            "data": {"status": "failed"},
                        }
                    ],
                },
            ],
        },
    },
)

SCHEDULE = Starter(
    "schedule",
    "Every weekday at 09:00: fetch a report over HTTP and log its status",
    {
        "workflow_id": "daily-report",
        "version": "1.0.0",
        "name": "Daily report",
        "description": "Fetches the report each weekday morning (cron, Europe/Paris time).",
        "tags": ["starter", "schedule"],
        "definition": {
            "trigger": {"type": "schedule", "cron": "0 9 * * 1-5", "timezone": "Europe/Paris"},
            "steps": [
                {
                    "id": "fetch",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "http_request",
                            "url": "https://reports.example.com/daily",
                            "method": "GET",
                            "timeout": "30s",
                        }
                    ],
                    "retry": {"max_attempts": 3, "backoff": "fixed", "initial_interval": "1m"},
                    "next": "log_result",
                },
                {
                    "id": "log_result",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "log",
                            "message": "Report answered "
                            "{{ steps.fetch.output.results[0].status_code }}",
                        }
                    ],
                },
            ],
        },
    },
)

STARTERS: dict[str, Starter] = {
    starter.name: starter for starter in (HELLO, EVENT_NOTIFY, APPROVAL, WEBHOOK_RETRY, SCHEDULE)
}
