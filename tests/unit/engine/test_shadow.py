"""engine.shadow: a candidate replayed on recorded events, compared with the recorded run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.definition import Definition
from engine.shadow import (
    NOT_STARTED,
    RecordedEvent,
    RecordedRun,
    RecordedStep,
    ShadowRun,
    ShadowSummary,
)
from engine.templating import TemplateRenderer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def definition(steps: list[dict[str, Any]], **trigger: Any) -> Definition:
    return Definition.from_dict(
        {"trigger": {"type": "event", "event": "order.placed", **trigger}, "steps": steps}
    )


def shadow_of(candidate: Definition) -> ShadowRun:
    return ShadowRun(candidate, now=NOW, renderer=TemplateRenderer())


def event(
    payload: dict[str, Any], recorded: RecordedRun | None, *, ago: timedelta
) -> RecordedEvent:
    return RecordedEvent("e1", "order.placed", payload, NOW - ago, recorded)


ALLOW = {"id": "done", "type": "action", "action": {"type": "allow"}}
BLOCK = {"id": "stop", "type": "action", "action": {"type": "block", "reason": "no"}}
WAIT_FOR_PAYMENT = {
    "id": "paid",
    "type": "wait",
    "wait": {
        "event": "order.paid",
        "match": {"field": "order.id", "operator": "eq", "value": "{{ order.id }}"},
        "timeout": "1h",
    },
    "next": "done",
    "on_timeout": "stop",
}


def ran(
    *steps: tuple[str, str],
    status: str = "completed",
    result: str | None = "allowed",
    **kwargs: Any,
) -> RecordedRun:
    return RecordedRun(
        execution_id="x1",
        workflow_version="1",
        status=status,
        result=result,
        steps=tuple(
            RecordedStep(step_id, step_type, 1, "completed") for step_id, step_type in steps
        ),
        **kwargs,
    )


def test_an_event_wait_takes_the_recorded_answer_or_its_recorded_timeout() -> None:
    candidate = shadow_of(definition([WAIT_FOR_PAYMENT, ALLOW, BLOCK]))
    paid = ran(("paid", "wait"), ("done", "action"), waits={"paid": {"order": {"id": "o1"}}})
    comparison = candidate.compare(event({"order": {"id": "o1"}}, paid, ago=timedelta(days=1)))
    assert comparison is not None
    assert (comparison.outcome_to, comparison.path_to) == ("allowed", ("paid", "done"))
    assert not comparison.differs

    timed_out = ran(("paid", "wait"), ("stop", "action"), result="blocked", waits={"paid": None})
    comparison = candidate.compare(event({"order": {"id": "o1"}}, timed_out, ago=timedelta(days=1)))
    assert comparison is not None
    assert comparison.path_to == ("paid", "stop") and not comparison.differs


def test_a_wait_the_record_never_answered_is_unresolved() -> None:
    candidate = shadow_of(definition([WAIT_FOR_PAYMENT, ALLOW, BLOCK]))
    before = ran(("done", "action"))
    comparison = candidate.compare(event({"order": {"id": "o1"}}, before, ago=timedelta(days=1)))
    assert comparison is not None
    assert comparison.outcome_to == "waiting"
    assert comparison.unresolved is not None
    assert comparison.unresolved["kind"] == "event"
    assert comparison.unresolved["step_id"] == "paid"
    assert comparison.newly_reached == ("paid",)
    assert comparison.no_longer_reached == ("done",)


def test_a_time_wait_has_ended_once_its_duration_has_passed_since_the_event() -> None:
    pause = {"id": "pause", "type": "wait", "wait": {"duration": "2h"}, "next": "done"}
    candidate = shadow_of(definition([pause, ALLOW]))
    recorded = ran(("done", "action"))
    old = candidate.compare(event({}, recorded, ago=timedelta(hours=3)))
    recent = candidate.compare(event({}, recorded, ago=timedelta(hours=1)))
    assert old is not None and recent is not None
    assert (old.outcome_to, old.unresolved) == ("allowed", None)
    assert recent.outcome_to == "waiting"
    assert recent.unresolved is not None and recent.unresolved["kind"] == "time"


def test_a_changed_trigger_filter_starts_or_no_longer_starts_runs() -> None:
    candidate = shadow_of(
        definition([ALLOW], filter={"field": "order.total", "operator": "gt", "value": 100})
    )
    small = candidate.compare(
        event({"order": {"total": 5}}, ran(("done", "action")), ago=timedelta(minutes=1))
    )
    assert small is not None
    assert (small.outcome_from, small.outcome_to) == ("allowed", NOT_STARTED)
    assert small.no_longer_reached == ("done",)
    large = candidate.compare(event({"order": {"total": 500}}, None, ago=timedelta(minutes=1)))
    assert large is not None
    assert (large.outcome_from, large.outcome_to) == (NOT_STARTED, "allowed")
    # An event neither version runs is not replayed at all.
    assert candidate.compare(event({"order": {"total": 5}}, None, ago=timedelta(minutes=1))) is None


def test_a_still_waiting_recorded_run_and_an_unresolved_replay_are_the_same_outcome() -> None:
    review = {
        "id": "review",
        "type": "action",
        "action": {"type": "require_approval", "reason": "check"},
        "on_approve": "done",
        "on_reject": "stop",
    }
    candidate = shadow_of(definition([review, ALLOW, BLOCK]))
    pending = ran(
        ("review", "action"), status="waiting", result=None, approvals={"review": "pending"}
    )
    comparison = candidate.compare(event({}, pending, ago=timedelta(minutes=5)))
    assert comparison is not None
    assert comparison.outcome_from == comparison.outcome_to == "waiting"
    assert comparison.unresolved is not None and not comparison.differs
    rejected = ran(
        ("review", "action"), ("stop", "action"), result="blocked", approvals={"review": "rejected"}
    )
    comparison = candidate.compare(event({}, rejected, ago=timedelta(minutes=5)))
    assert comparison is not None
    assert comparison.path_to == ("review", "stop") and not comparison.differs


def test_the_summary_counts_changes_and_steps() -> None:
    candidate = shadow_of(definition([BLOCK]))
    summary = ShadowSummary()
    for n in range(3):
        comparison = candidate.compare(
            event({"n": n}, ran(("done", "action")), ago=timedelta(minutes=1))
        )
        assert comparison is not None
        summary.add(comparison)
    assert summary.to_dict() == {
        "events_replayed": 3,
        "same_result": 0,
        "different_result": 3,
        "differences": 3,
        "unresolved": 0,
        "by_change": [{"change": "allowed → blocked", "count": 3}],
        "steps_newly_reached": [{"step_id": "stop", "count": 3}],
        "steps_no_longer_reached": [{"step_id": "done", "count": 3}],
    }


def test_a_retried_step_is_one_visit_of_the_recorded_path() -> None:
    recorded = RecordedRun(
        execution_id="x",
        workflow_version="1",
        status="failed",
        result="failed",
        steps=(
            RecordedStep("call", "execute", 1, "failed"),
            RecordedStep("call", "execute", 2, "failed"),
            RecordedStep("check", "condition", 1, "completed", {"result": True}),
        ),
    )
    assert recorded.path == ("call", "check")
    assert recorded.outcome == "failed"
    assert recorded.verdicts == {"check": True}


def later(*events: tuple[str, dict[str, Any]]) -> Any:
    """A `later_events` over these (type, payload) events, recording what it was asked."""
    asked: list[tuple[str, datetime, datetime | None]] = []

    def find(event_type: str, after: datetime, until: datetime | None) -> list[dict[str, Any]]:
        asked.append((event_type, after, until))
        return [payload for kind, payload in events if kind == event_type]

    find.asked = asked  # type: ignore[attr-defined]
    return find


def test_a_new_event_wait_takes_the_first_later_event_that_meets_its_match() -> None:
    events = later(
        ("order.paid", {"order": {"id": "other"}}),
        ("order.paid", {"order": {"id": "o1"}, "paid": 12}),
    )
    candidate = ShadowRun(
        definition([WAIT_FOR_PAYMENT, ALLOW, BLOCK]),
        now=NOW,
        renderer=TemplateRenderer(),
        later_events=events,
    )
    received = NOW - timedelta(minutes=10)
    comparison = candidate.compare(
        RecordedEvent(
            "e1", "order.placed", {"order": {"id": "o1"}}, received, ran(("done", "action"))
        )
    )
    assert comparison is not None
    assert (comparison.outcome_to, comparison.path_to) == ("allowed", ("paid", "done"))
    assert comparison.unresolved is None
    # Asked for the wait's event type, from the replayed event to its timeout (1h).
    assert events.asked == [("order.paid", received, received + timedelta(hours=1))]


def test_a_new_event_wait_times_out_once_its_timeout_passed_with_no_matching_event() -> None:
    candidate = ShadowRun(
        definition([WAIT_FOR_PAYMENT, ALLOW, BLOCK]),
        now=NOW,
        renderer=TemplateRenderer(),
        later_events=later(("order.paid", {"order": {"id": "other"}})),
    )
    old = candidate.compare(
        event({"order": {"id": "o1"}}, ran(("done", "action")), ago=timedelta(hours=2))
    )
    recent = candidate.compare(
        event({"order": {"id": "o1"}}, ran(("done", "action")), ago=timedelta(minutes=5))
    )
    assert old is not None and recent is not None
    assert (old.outcome_to, old.path_to) == ("blocked", ("paid", "stop"))
    assert recent.outcome_to == "waiting"
    assert recent.unresolved is not None and recent.unresolved["step_id"] == "paid"
