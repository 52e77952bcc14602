"""Shadow run: replay recorded events through a candidate definition and compare.

For each recorded event the shell hands over (its payload, and what the
recorded execution of the workflow did with it, if the event started one),
the candidate definition is followed by the dry run (engine.dryrun: no side
effects, would-be requests recorded) and compared with the recorded run on its
outcome, its path, the verdict of each condition step and the approvals it
asked for.

Waits and approvals are resolved from what really happened later, where the
record has it: the recorded execution's decision for an approval step of the
same id, the event that ended its wait step of the same id (or its timeout); a
time wait whose end has passed has ended. A wait for an event that the recorded
run did not have is answered by the first recorded event of its type, received
after the replayed one and within the wait's timeout, that meets its `match`
(the shell lists them: ``later_events``), or times out when its timeout has
passed with none. Anything else stops the replay there and is marked
unresolved. The candidate's ``context.load`` takes the resources the recorded
run loaded (``RecordedRun.loaded``) and fetches nothing: a resource the record
lacks is listed as a would-be fetch and reported skipped, as in a dry run.

The summary counts; it never keeps the comparisons, so a caller streaming
events keeps memory bounded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.condition import RuleLookup, evaluate
from engine.definition import Definition
from engine.dryrun import DryRunReport, dry_run
from engine.state import ApprovalStatus, ExecutionStatus
from engine.templating import TemplateRenderer
from engine.trigger import event_matches

NOT_STARTED = "not started"
# (event type, received after, received until or None) -> the payloads of the recorded
# events of that type received then, oldest first.
LaterEvents = Callable[[str, datetime, datetime | None], Iterable[Mapping[str, Any]]]
# Approval outcomes a replay can take over; a pending one is still undecided.
DECIDED_APPROVALS = frozenset(
    {ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED}
)


@dataclass(frozen=True)
class RecordedStep:
    """One top-level step-run row of the recorded execution (branch rows excluded)."""

    step_id: str
    step_type: str
    attempt: int
    status: str
    output: Any = None


@dataclass(frozen=True)
class RecordedRun:
    """What the recorded execution did: its rows, read by the shell.

    ``waits`` maps a wait step id to the payload of the event that ended it, or
    None when it timed out (only waits that ended are there); ``approvals`` maps
    an approval step id to the approval's status; ``loaded`` maps a resource its
    ``context.load`` loaded to the value (engine.enrichment.recorded_loads).
    """

    execution_id: str
    workflow_version: str
    status: str
    result: str | None
    steps: tuple[RecordedStep, ...] = ()
    approvals: Mapping[str, str] = field(default_factory=dict)
    waits: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    loaded: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> tuple[str, ...]:
        # A retry is the same visit of a step; a first attempt is a new one.
        return tuple(step.step_id for step in self.steps if step.attempt == 1)

    @property
    def outcome(self) -> str:
        return _outcome(self.status, self.result)

    @property
    def verdicts(self) -> dict[str, Any]:
        return {
            step.step_id: step.output.get("result")
            for step in self.steps
            if step.step_type == "condition"
            and step.status == "completed"
            and isinstance(step.output, Mapping)
        }


@dataclass(frozen=True)
class RecordedEvent:
    event_id: str
    event_type: str
    payload: Mapping[str, Any]
    received_at: datetime
    # The execution of this workflow the event started, if any.
    recorded: RecordedRun | None = None


@dataclass(frozen=True)
class Comparison:
    """One replayed event: the recorded run (``from``) beside the candidate's (``to``)."""

    event_id: str
    event_type: str
    received_at: datetime
    recorded_execution_id: str | None
    recorded_version: str | None
    outcome_from: str
    outcome_to: str
    path_from: tuple[str, ...]
    path_to: tuple[str, ...]
    decisions_changed: tuple[dict[str, Any], ...] = ()
    approvals_from: tuple[str, ...] = ()
    approvals_to: tuple[str, ...] = ()
    unresolved: Mapping[str, Any] | None = None
    would: tuple[dict[str, Any], ...] = ()

    @property
    def same_outcome(self) -> bool:
        return self.outcome_from == self.outcome_to

    @property
    def newly_reached(self) -> tuple[str, ...]:
        return _ordered_difference(self.path_to, self.path_from)

    @property
    def no_longer_reached(self) -> tuple[str, ...]:
        return _ordered_difference(self.path_from, self.path_to)

    @property
    def differs(self) -> bool:
        return (
            not self.same_outcome
            or self.path_from != self.path_to
            or bool(self.decisions_changed)
            or self.approvals_from != self.approvals_to
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "received_at": self.received_at.isoformat(),
            "recorded_execution_id": self.recorded_execution_id,
            "recorded_version": self.recorded_version,
            "from": self.outcome_from,
            "to": self.outcome_to,
            "path_from": list(self.path_from),
            "path_to": list(self.path_to),
            "newly_reached": list(self.newly_reached),
            "no_longer_reached": list(self.no_longer_reached),
            "decisions_changed": list(self.decisions_changed),
            "approvals_from": list(self.approvals_from),
            "approvals_to": list(self.approvals_to),
            "unresolved": None if self.unresolved is None else dict(self.unresolved),
            "would": list(self.would),
        }


@dataclass
class ShadowSummary:
    """Counts over every replayed event; the differences themselves go elsewhere."""

    events_replayed: int = 0
    same_result: int = 0
    different_result: int = 0
    differences: int = 0
    unresolved: int = 0
    by_change: Counter[str] = field(default_factory=Counter)
    newly_reached: Counter[str] = field(default_factory=Counter)
    no_longer_reached: Counter[str] = field(default_factory=Counter)

    def add(self, comparison: Comparison) -> None:
        self.events_replayed += 1
        if comparison.same_outcome:
            self.same_result += 1
        else:
            self.different_result += 1
            self.by_change[f"{comparison.outcome_from} → {comparison.outcome_to}"] += 1
        if comparison.differs:
            self.differences += 1
        if comparison.unresolved is not None:
            self.unresolved += 1
        self.newly_reached.update(comparison.newly_reached)
        self.no_longer_reached.update(comparison.no_longer_reached)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_replayed": self.events_replayed,
            "same_result": self.same_result,
            "different_result": self.different_result,
            "differences": self.differences,
            "unresolved": self.unresolved,
            "by_change": _sorted_counts(self.by_change, "change"),
            "steps_newly_reached": _sorted_counts(self.newly_reached, "step_id"),
            "steps_no_longer_reached": _sorted_counts(self.no_longer_reached, "step_id"),
        }


class ShadowRun:
    """The candidate definition, ready to replay recorded events one at a time."""

    def __init__(
        self,
        candidate: Definition,
        *,
        now: datetime,
        renderer: TemplateRenderer,
        rules: RuleLookup | None = None,
        later_events: LaterEvents | None = None,
    ) -> None:
        self.candidate = candidate
        self.now = now
        self.renderer = renderer
        self.rules = rules
        self.later_events = later_events
        trigger = candidate.trigger
        exact = trigger.type == "event" and trigger.event and "*" not in trigger.event
        self._event_type = trigger.event if exact else None
        self._approval_steps = frozenset(
            step_id for step_id in _step_ids(candidate) if candidate.step(step_id).creates_approval
        )

    def starts(self, event: RecordedEvent) -> bool:
        """Whether the candidate's trigger starts a run for this event."""
        return event_matches(self.candidate.trigger, event.event_type, event.payload, self._holds)

    def compare(self, event: RecordedEvent) -> Comparison | None:
        """The comparison for one event; None for an event that neither the recorded
        workflow nor the candidate runs (nothing to replay)."""
        recorded = event.recorded
        starts = self.starts(event)
        if recorded is None and not starts:
            return None
        path_to: tuple[str, ...] = ()
        outcome_to = NOT_STARTED
        verdicts_to: dict[str, Any] = {}
        unresolved: Mapping[str, Any] | None = None
        would: tuple[dict[str, Any], ...] = ()
        if starts:
            report = self._replay(event)
            path_to = report.path
            outcome_to = _outcome(report.status.value, _value(report.result))
            top_level = set(report.path)
            verdicts_to = {
                d["step_id"]: d["condition"]
                for d in report.decisions
                if "condition" in d and d["step_id"] in top_level
            }
            unresolved = report.waiting
            would = report.effects
        verdicts_from = recorded.verdicts if recorded else {}
        return Comparison(
            event_id=event.event_id,
            event_type=event.event_type,
            received_at=event.received_at,
            recorded_execution_id=recorded.execution_id if recorded else None,
            recorded_version=recorded.workflow_version if recorded else None,
            outcome_from=recorded.outcome if recorded else NOT_STARTED,
            outcome_to=outcome_to,
            path_from=recorded.path if recorded else (),
            path_to=path_to,
            decisions_changed=_changed_verdicts(verdicts_from, verdicts_to),
            approvals_from=tuple(sorted(recorded.approvals)) if recorded else (),
            approvals_to=tuple(sorted(set(path_to) & self._approval_steps)),
            unresolved=unresolved,
            would=would,
        )

    def _replay(self, event: RecordedEvent) -> DryRunReport:
        """The dry run, taken past each event wait that a later recorded event answers."""
        answers = self._waits(event.recorded, event.received_at)
        while True:
            report = dry_run(
                self.candidate,
                event.payload,
                now=event.received_at,
                renderer=self.renderer,
                rules=self.rules,
                approvals=self._approvals(event.recorded),
                events=answers,
                event_type=self._event_type,
                loaded=event.recorded.loaded if event.recorded else None,
            )
            waiting = report.waiting
            if waiting is None or waiting["kind"] != "event" or waiting["step_id"] in answers:
                return report
            answered, answer = self._later_event(waiting, event.received_at)
            if not answered:
                return report
            answers[waiting["step_id"]] = answer

    def _later_event(
        self, waiting: Mapping[str, Any], since: datetime
    ) -> tuple[bool, Mapping[str, Any] | None]:
        """(True, the payload of the first later event that ends this wait), (True, None)
        when it timed out with none, (False, None) when the record cannot tell (yet)."""
        wait = self.candidate.step(waiting["step_id"]).wait
        request = waiting["would_wait_for"]
        if self.later_events is None or wait is None or not request.get("event"):
            return False, None
        until = None if wait.timeout is None else since + wait.timeout
        match = request.get("match")
        for payload in self.later_events(request["event"], since, until):
            if not match or self._holds_as_rendered(match, payload):
                return True, payload
        if until is not None and until <= self.now:
            return True, None
        return False, None

    def _holds_as_rendered(self, match: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
        # As the resumer does: the match was rendered when the wait began.
        try:
            return evaluate(match, payload, render=lambda value: value)
        except Exception:  # an unevaluable match does not match
            return False

    def _approvals(self, recorded: RecordedRun | None) -> dict[str, ApprovalStatus]:
        if recorded is None:
            return {}
        return {
            step_id: ApprovalStatus(status)
            for step_id, status in recorded.approvals.items()
            if status in DECIDED_APPROVALS
        }

    def _waits(
        self, recorded: RecordedRun | None, received_at: datetime
    ) -> dict[str, Mapping[str, Any] | None]:
        """Each wait's answer: the recorded one, else ``{}`` (ended) for a time wait
        whose fixed duration has passed since the event arrived."""
        answers: dict[str, Mapping[str, Any] | None] = {}
        for step_id in _step_ids(self.candidate):
            wait = self.candidate.step(step_id).wait
            if wait is None or wait.event is not None or wait.duration is None:
                continue
            if received_at + wait.duration <= self.now:
                answers[step_id] = {}
        if recorded is not None:
            answers.update(recorded.waits)
        return answers

    def _holds(self, condition: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
        try:
            return evaluate(
                condition, payload, render=lambda value: self.renderer.render(value, payload)
            )
        except Exception:  # as routing does: a filter that cannot be evaluated does not match
            return False


def _outcome(status: str, result: str | None) -> str:
    """A finished run's result (or its status when it has none); an unfinished run's status."""
    if status in {s.value for s in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)}:
        return result or status
    return status


def _value(result: Any) -> str | None:
    return None if result is None else str(result.value)


def _changed_verdicts(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], ...]:
    common = [step_id for step_id in before if step_id in after]
    return tuple(
        {"step_id": step_id, "from": before[step_id], "to": after[step_id]}
        for step_id in common
        if before[step_id] != after[step_id]
    )


def _ordered_difference(path: tuple[str, ...], other: tuple[str, ...]) -> tuple[str, ...]:
    seen = set(other)
    return tuple(dict.fromkeys(step_id for step_id in path if step_id not in seen))


def _step_ids(definition: Definition) -> list[str]:
    pending, ids = list(definition.steps), []
    while pending:
        step = pending.pop()
        ids.append(step.id)
        pending.extend(step.body)
    return ids


def _sorted_counts(counts: Counter[str], key: str) -> list[dict[str, Any]]:
    return [
        {key: name, "count": n} for name, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))
    ]
