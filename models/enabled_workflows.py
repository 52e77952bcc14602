"""The enabled workflows as the metrics' zero series need them (monitoring/baseline.py).

One small grouped query per scrape, so every enabled workflow has its series at 0
from the moment it is enabled, in whichever process serves the scrape.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONPATH

from models.workflow import Workflow

# Anywhere in the definition (nested branches too): an action or an execute item that
# asks for an approval (engine.definition.Step.creates_approval).
_ASKS_APPROVAL = literal(
    '$.** ? (@.type == "require_approval" || @.type == "create_approval_request")'
)


# The ids of the steps that have a retry policy (the only ones whose retries are counted).
# Strict: in lax mode `.**` also reaches each array element through the unwrapped array,
# so every step would be listed twice.
_RETRIED_STEP_IDS = literal('strict $.** ? (@.retry.type() == "object").id')


class EnabledWorkflow(NamedTuple):
    slug: str
    trigger_type: str
    trigger_event: str | None
    asks_approval: bool
    retried_steps: tuple[str, ...] = ()


def enabled_workflows(connection: Connection) -> list[EnabledWorkflow]:
    """Every enabled workflow (one row per organization that enabled the slug)."""
    statement = (
        select(
            Workflow.workflow_id,
            Workflow.trigger_type,
            Workflow.trigger_event,
            func.jsonb_path_exists(Workflow.definition, cast(_ASKS_APPROVAL, JSONPATH)),
            func.jsonb_path_query_array(Workflow.definition, cast(_RETRIED_STEP_IDS, JSONPATH)),
        )
        .where(Workflow.enabled)
        .order_by(Workflow.workflow_id)
    )
    return [
        EnabledWorkflow(slug, trigger, event, bool(asks), tuple(str(i) for i in retried or ()))
        for slug, trigger, event, asks, retried in connection.execute(statement)
    ]
