"""POST /workflows/{id}/test: the engine's dry run on a sample payload, nothing performed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from api.services import services, settings
from engine.definition import Definition
from engine.dryrun import dry_run
from engine.templating import TemplateRenderer
from models.workflow import Rule, Workflow


def dry_run_workflow(workflow: Workflow, payload: dict[str, Any]) -> dict[str, Any]:
    definition = Definition.from_dict(workflow.definition)
    trigger = definition.trigger
    with services().session_factory() as session:
        rules = {
            row.rule_id: list(row.conditions)
            for row in session.scalars(
                select(Rule).where(
                    Rule.organization_id == workflow.organization_id, Rule.enabled.is_(True)
                )
            )
        }

    def lookup(rule_id: str) -> Sequence[Mapping[str, Any]] | None:
        return rules.get(rule_id)

    report = dry_run(
        definition,
        payload,
        now=datetime.now(UTC),
        renderer=TemplateRenderer(settings().workflow_secrets),
        rules=lookup,
        event_type=trigger.event
        if trigger.type == "event" and trigger.event and "*" not in trigger.event
        else None,
    )
    return report.to_dict()
