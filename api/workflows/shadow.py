"""POST /workflows/{id}/shadow and GET .../shadow/{report_id}: shadow runs of a candidate.

The request stores a report (and its audit entry) in one transaction. A short
one (an explicit list of events, a small `limit`, or a window holding few
events) is then run by the request itself; a longer one by a worker
(tasks.shadow.RUN_SHADOW). Both run tasks.shadow.run_report: one code path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import func, select

from api.audit import record_audit
from api.auth.principal import Principal
from api.dispatch import publisher
from api.errors import abort
from api.services import services, settings
from api.workflows import service
from engine.templating import TemplateRenderer
from models.shadow import ShadowDifference, ShadowReport
from tasks import shadow

log = structlog.get_logger(__name__)


def start_shadow(
    principal: Principal, row_id: uuid.UUID, body: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    """Store the report, run it now or hand it to a worker; (the report's page 1, status)."""
    candidate = _candidate(body["candidate"])
    selection = shadow.Selection(
        since=body.get("since"),
        until=body.get("until"),
        event_ids=tuple(body.get("event_ids") or ()),
        limit=body.get("limit"),
    )
    with services().unit_of_work() as uow:
        session = uow.session
        workflow = service.get_workflow_in(session, principal.organization_id, row_id)
        if candidate.get("workflow_id") not in (None, workflow.workflow_id):
            abort(
                422,
                "The candidate is another workflow",
                {"candidate.workflow_id": [f"must be {workflow.workflow_id!r}"]},
            )
        report = ShadowReport(
            organization_id=principal.organization_id,
            workflow_row_id=workflow.id,
            workflow_id=workflow.workflow_id,
            current_definition=workflow.definition,
            candidate=candidate["definition"],
            selection=selection.to_dict(),
            status=shadow.PENDING,
            created_by=principal.user_id,
        )
        session.add(report)
        session.flush()
        patterns = (workflow.definition["trigger"].get("event"), _event(candidate["definition"]))
        inline = not body.get("background") and (
            bool(selection.event_ids)
            or shadow.is_small(
                session, shadow.events_statement(principal.organization_id, patterns, selection)
            )
        )
        record_audit(
            session,
            "workflow_shadow_run",
            "workflow",
            workflow.id,
            {
                "report_id": str(report.id),
                "workflow_id": workflow.workflow_id,
                "version": workflow.version,
                "candidate_version": candidate.get("version"),
                "selection": selection.to_dict(),
                "inline": inline,
            },
            principal=principal,
        )
        report_id = report.id
        uow.commit()
    if inline:
        shadow.run_report(
            services().session_factory, report_id, TemplateRenderer(settings().workflow_secrets)
        )
        return get_report(principal.organization_id, row_id, report_id, 1, 20), 200
    _queue(report_id)
    return get_report(principal.organization_id, row_id, report_id, 1, 20), 202


def get_report(
    organization_id: uuid.UUID, row_id: uuid.UUID, report_id: uuid.UUID, page: int, page_size: int
) -> dict[str, Any]:
    """The report with one page of its differences, in replay order."""
    with services().session_factory() as session:
        report = session.scalars(
            select(ShadowReport).where(
                ShadowReport.id == report_id,
                ShadowReport.organization_id == organization_id,
                ShadowReport.workflow_row_id == row_id,
            )
        ).first()
        if report is None:
            abort(404, "Shadow report not found")
        total = session.scalar(select(func.count()).where(ShadowDifference.report_id == report_id))
        rows = session.scalars(
            select(ShadowDifference.comparison)
            .where(ShadowDifference.report_id == report_id)
            .order_by(ShadowDifference.seq)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        return {
            "id": report.id,
            "workflow_id": report.workflow_id,
            "workflow_row_id": report.workflow_row_id,
            "status": report.status,
            "selection": report.selection,
            "summary": report.summary,
            "error_message": report.error_message,
            "created_at": report.created_at,
            "started_at": report.started_at,
            "completed_at": report.completed_at,
            "differences": list(rows),
            "total": total or 0,
            "page": page,
            "page_size": page_size,
        }


def _candidate(raw: Any) -> dict[str, Any]:
    """The candidate as a validated, normalised workflow (a 422 lists its problems)."""
    if not isinstance(raw, Mapping):
        abort(422, "Invalid candidate", {"candidate": ["must be a workflow object"]})
    return service.validate(raw)


def _event(definition: Mapping[str, Any]) -> str | None:
    event = definition["trigger"].get("event")
    return event if isinstance(event, str) else None


def _queue(report_id: uuid.UUID) -> None:
    """Hand the report to a worker; if the broker refuses, the report is marked failed
    (never left pending with nobody to run it) and the caller gets a 503."""
    try:
        publisher().send(shadow.RUN_SHADOW, {"report_id": str(report_id)})
    except Exception as exc:  # any broker failure
        log.warning("shadow_report_publish_failed", report_id=str(report_id), error=repr(exc))
        shadow.mark_failed(services().session_factory, report_id, "could not be queued")
        abort(503, "The shadow run could not be queued; try again", headers={"Retry-After": "5"})
