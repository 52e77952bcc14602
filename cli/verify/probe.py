"""The probe workflow `iwctl verify` deploys: one of each kind of step that can go wrong.

`mark` sets a value (the one-statement path), `call` posts to iwctl's sink with
retries (the effects path and its ledger), `approve` waits for a decision iwctl
makes (approvals), `pause` waits one second (timers), `done` allows.
"""

from __future__ import annotations

from typing import Any

STEP_IDS = ("mark", "call", "approve", "pause", "done")
APPROVER_ROLE = "admin"


def probe_workflow(run_id: str, sink_url: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id(run_id),
        "version": "1",
        "name": f"iwctl verify probe {run_id}",
        "description": "Deployed by `iwctl verify` for one run and deleted when it ends.",
        "tags": ["iwctl-verify"],
        "enabled": True,
        "definition": {
            "trigger": {"type": "event", "event": event_type(run_id)},
            "steps": [
                {
                    "id": "mark",
                    "type": "execute",
                    "execute": [{"type": "set", "values": {"probe": "{{ n }}"}}],
                    "next": "call",
                },
                {
                    "id": "call",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "http_request",
                            "url": f"{sink_url}/effect",
                            "method": "POST",
                            "body": {"run": run_id, "n": "{{ n }}"},
                            "timeout": "5s",
                        }
                    ],
                    "retry": {
                        "max_attempts": 5,
                        "backoff": "fixed",
                        "initial_interval": "200ms",
                        "retry_on": ["5xx", "timeout", "connection"],
                    },
                    "next": "approve",
                },
                {
                    "id": "approve",
                    "type": "action",
                    "action": {"type": "require_approval", "reason": "iwctl verify"},
                    "execute": [
                        {
                            "type": "create_approval_request",
                            "entity": "iwctl_verify",
                            "entity_id": "{{ n }}",
                            "data": {
                                "approver_role": APPROVER_ROLE,
                                "expires_in": "1h",
                                "reason": "iwctl verify probe {{ n }}",
                            },
                        }
                    ],
                    "on_approve": "pause",
                    "on_reject": "refused",
                },
                {"id": "pause", "type": "wait", "wait": {"duration": "1s"}, "next": "done"},
                {"id": "done", "type": "action", "action": {"type": "allow"}},
                {
                    "id": "refused",
                    "type": "action",
                    "action": {"type": "block", "reason": "rejected"},
                },
            ],
        },
    }


def workflow_id(run_id: str) -> str:
    return f"iwctl-verify-{run_id}"


def event_type(run_id: str) -> str:
    return f"iwctl.verify.{run_id}"
