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


class EnabledWorkflow(NamedTuple):
    slug: str
    trigger_type: str
    trigger_event: str | None
    asks_approval: bool


def enabled_workflows(connection: Connection) -> list[EnabledWorkflow]:
    """Every enabled workflow slug (across organizations) with its trigger."""
    asks = func.bool_or(func.jsonb_path_exists(Workflow.definition, cast(_ASKS_APPROVAL, JSONPATH)))
    statement = (
        select(Workflow.workflow_id, Workflow.trigger_type, Workflow.trigger_event, asks)
        .where(Workflow.enabled)
        .group_by(Workflow.workflow_id, Workflow.trigger_type, Workflow.trigger_event)
        .order_by(Workflow.workflow_id)
    )
    return [EnabledWorkflow(*row) for row in connection.execute(statement)]
