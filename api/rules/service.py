"""Rules: validation, storage and dry evaluation of named condition sets."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from sqlalchemy import Select, cast, func, select
from sqlalchemy.dialects.postgresql import JSONPATH
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.audit import record_audit
from api.auth.principal import Principal
from api.errors import abort
from api.pagination import paginate
from api.services import services
from engine.condition import condition_problems, evaluate_with_trace
from engine.errors import EngineError
from engine.templating import TemplateRenderer
from models.workflow import Rule, Workflow

UNIQUE_RULE_ID = "uq_rules_organization_id_rule_id"
EDITABLE = ("name", "description", "conditions", "enabled")
# Any `rule_id` key anywhere in a definition that names the rule.
_REFERENCES_RULE = "$.** ? (@.rule_id == $rule_id)"


def check_conditions(conditions: Sequence[Any]) -> None:
    """422 with every structural problem of the conditions, at its JSON path."""
    errors: dict[str, list[str]] = {}
    for index, condition in enumerate(conditions):
        for problem in condition_problems(condition, f"conditions[{index}]"):
            errors.setdefault(problem.path, []).append(problem.message)
    if errors:
        abort(422, "The rule's conditions are invalid", errors)


def create_rule(principal: Principal, data: Mapping[str, Any]) -> Rule:
    check_conditions(data["conditions"])
    with services().unit_of_work() as uow:
        session = uow.session
        if _find(session, principal.organization_id, data["rule_id"]) is not None:
            _conflict(data["rule_id"])
        rule = Rule(
            organization_id=principal.organization_id,
            created_by=principal.user_id,
            rule_id=data["rule_id"],
            name=data["name"],
            description=data.get("description"),
            conditions=list(data["conditions"]),
            enabled=data["enabled"],
        )
        session.add(rule)
        try:
            session.flush()
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
            if constraint == UNIQUE_RULE_ID:
                _conflict(data["rule_id"])
            raise
        record_audit(
            session,
            "rule_created",
            "rule",
            rule.id,
            {"rule_id": rule.rule_id, "enabled": rule.enabled},
            principal=principal,
        )
        session.refresh(rule)
        uow.commit()
        return rule


def list_rules(organization_id: uuid.UUID, query: Mapping[str, Any]) -> dict[str, Any]:
    statement: Select[Any] = select(Rule).where(Rule.organization_id == organization_id)
    if query.get("search"):
        needle = query["search"]
        statement = statement.where(
            Rule.name.icontains(needle, autoescape=True)
            | Rule.rule_id.icontains(needle, autoescape=True)
        )
    if query.get("enabled") is not None:
        statement = statement.where(Rule.enabled.is_(query["enabled"]))
    statement = statement.order_by(Rule.created_at.desc(), Rule.id.desc())
    with services().session_factory() as session:
        return paginate(session, statement, query["page"], query["page_size"], "rules")


def get_rule(organization_id: uuid.UUID, row_id: uuid.UUID) -> Rule:
    with services().session_factory() as session:
        return _load(session, organization_id, row_id)


def update_rule(principal: Principal, row_id: uuid.UUID, data: Mapping[str, Any]) -> Rule:
    """Replace name, description and conditions (and `enabled` when given).

    `rule_id` is what workflows reference, so it is immutable: omit it or repeat it.
    """
    check_conditions(data["conditions"])
    with services().unit_of_work() as uow:
        session = uow.session
        rule = _load(session, principal.organization_id, row_id, lock=True)
        if data.get("rule_id") not in (None, rule.rule_id):
            abort(
                422,
                "A rule's rule_id cannot be changed",
                {"rule_id": [f"cannot be changed (is {rule.rule_id!r})"]},
            )
        before = {key: getattr(rule, key) for key in EDITABLE}
        rule.name = data["name"]
        rule.description = data.get("description")
        rule.conditions = list(data["conditions"])
        if data.get("enabled") is not None:
            rule.enabled = data["enabled"]
        changed = sorted(key for key in EDITABLE if getattr(rule, key) != before[key])
        record_audit(
            session,
            "rule_updated",
            "rule",
            rule.id,
            {"rule_id": rule.rule_id, "changed": changed},
            principal=principal,
        )
        session.flush()
        session.refresh(rule)
        uow.commit()
        return rule


def set_enabled(principal: Principal, row_id: uuid.UUID, enabled: bool) -> Rule:
    """Idempotent: enabling an enabled rule changes nothing and records nothing."""
    with services().unit_of_work() as uow:
        session = uow.session
        rule = _load(session, principal.organization_id, row_id, lock=True)
        if rule.enabled == enabled:
            uow.commit()  # releases the lock; a rollback would expire the row
            return rule
        rule.enabled = enabled
        action = "rule_enabled" if enabled else "rule_disabled"
        record_audit(
            session, action, "rule", rule.id, {"rule_id": rule.rule_id}, principal=principal
        )
        session.flush()
        session.refresh(rule)
        uow.commit()
        return rule


def delete_rule(principal: Principal, row_id: uuid.UUID) -> None:
    """Delete a rule; refused (409) while an enabled workflow version references it."""
    with services().unit_of_work() as uow:
        session = uow.session
        rule = _load(session, principal.organization_id, row_id, lock=True)
        users = _enabled_workflows_referencing(session, principal.organization_id, rule.rule_id)
        if users:
            abort(
                409,
                f"Rule {rule.rule_id!r} is referenced by enabled workflows; disable them first",
                {"workflows": users},
            )
        record_audit(
            session, "rule_deleted", "rule", rule.id, {"rule_id": rule.rule_id}, principal=principal
        )
        session.delete(rule)
        uow.commit()


def evaluate_rule(
    organization_id: uuid.UUID, row_id: uuid.UUID, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """Evaluate each condition against `payload`, with no side effects.

    Nested `rule_id` references resolve to the organization's enabled rules; a
    condition that cannot be evaluated (unknown rule, failing template) is
    reported as unmatched with its error.
    """
    renderer = TemplateRenderer()

    def render(value: Any) -> Any:
        return renderer.render(value, payload)

    with services().session_factory() as session:
        rule = _load(session, organization_id, row_id)
        lookup = _rule_lookup(session, organization_id)
        results = []
        for index, condition in enumerate(rule.conditions):
            error = None
            try:
                matched, decisions = evaluate_with_trace(
                    condition, payload, render=render, rules=lookup
                )
            except EngineError as exc:
                matched, decisions, error = False, [], str(exc)
            results.append(
                {
                    "index": index,
                    "condition": condition,
                    "matched": matched,
                    "decisions": [decision.to_dict() for decision in decisions],
                    "error": error,
                }
            )
    return {"matched": all(result["matched"] for result in results), "results": results}


def _rule_lookup(session: Session, organization_id: uuid.UUID) -> Callable[[str], list[Any] | None]:
    cache: dict[str, list[Any] | None] = {}

    def lookup(rule_id: str) -> list[Any] | None:
        if rule_id not in cache:
            cache[rule_id] = session.scalars(
                select(Rule.conditions).where(
                    Rule.organization_id == organization_id,
                    Rule.rule_id == rule_id,
                    Rule.enabled.is_(True),
                )
            ).first()
        return cache[rule_id]

    return lookup


def _enabled_workflows_referencing(
    session: Session, organization_id: uuid.UUID, rule_id: str
) -> list[str]:
    rows = session.execute(
        select(Workflow.workflow_id, Workflow.version).where(
            Workflow.organization_id == organization_id,
            Workflow.enabled.is_(True),
            func.jsonb_path_exists(
                Workflow.definition,
                cast(_REFERENCES_RULE, JSONPATH),
                func.jsonb_build_object("rule_id", rule_id),
            ),
        )
    )
    return [f"{workflow_id}@{version}" for workflow_id, version in rows]


def _load(
    session: Session, organization_id: uuid.UUID, row_id: uuid.UUID, *, lock: bool = False
) -> Rule:
    statement = select(Rule).where(Rule.id == row_id, Rule.organization_id == organization_id)
    if lock:
        statement = statement.with_for_update()
    rule = session.scalars(statement).first()
    if rule is None:
        abort(404, "Rule not found")
    return rule


def _find(session: Session, organization_id: uuid.UUID, rule_id: str) -> Rule | None:
    return session.scalars(
        select(Rule).where(Rule.organization_id == organization_id, Rule.rule_id == rule_id)
    ).first()


def _conflict(rule_id: str) -> NoReturn:
    abort(409, f"Rule {rule_id!r} already exists", {"rule_id": ["already exists"]})
