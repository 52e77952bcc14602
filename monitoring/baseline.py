"""Zero-valued series for every known label set, added at scrape time.

A labelled counter has no series until its first event, so ``increase()``
misses that event and panels read "no data" instead of 0. The label sets we
can know in advance are filled in here, in the serving process, after the
per-process files are merged: a label set any process (live or archived) has
recorded is left alone, every other known one is added with zeros.

Why at scrape time rather than at process start: in multiprocess mode a
``labels()`` call at start writes the series into every process's file, and
every scrape reads every sample of every file (NOTES.md), so the cost would
grow with processes times workflows; and a workflow enabled after start would get
no series until a restart. Here each series costs one sample per scrape, and
the list of enabled workflows is read when the scrape happens.

Known label sets (:func:`known_label_sets`): per enabled workflow, its
executions by final status and trigger (its own and ``manual``), its execution
duration, its errors by type, and, when it asks for approvals, its approvals
by outcome and their duration, and the retries of each step with a retry
policy; the events that trigger it; AI requests by status for the configured
model (``none`` when AI is off); notifications by channel and status. Step
durations start with a step's first attempt: their label sets (steps times
statuses times buckets) would multiply the scrape for little gain, and no alert
reads them with increase().
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from monitoring import metrics

# Label values the recorders use; tests check them against engine/ and the notifier.
FINAL_EXECUTION_STATUSES = ("completed", "failed", "cancelled")
EXECUTION_ERROR_TYPES = ("timeout", "step_error", "context_error", "cancelled")
MANUAL_TRIGGER = "manual"
APPROVAL_OUTCOMES = ("requested", "approved", "rejected", "expired")
NOTIFICATION_CHANNELS = ("email", "slack", "webhook", "other")
NOTIFICATION_STATUSES = ("sent", "failed", "skipped")
AI_STATUSES = ("success", "upstream_error", "rate_limited", "unavailable", "cancelled")
AI_DISABLED_MODEL = "none"
"""The ``model`` label of requests answered 503 because no provider is configured."""

LabelSet = Mapping[str, str]


@dataclass(frozen=True)
class KnownWorkflow:
    """An enabled workflow as the zero series need it (read from the workflows table)."""

    slug: str
    trigger_type: str
    trigger_event: str | None = None
    asks_approval: bool = False
    retried_steps: Sequence[str] = ()


@dataclass(frozen=True)
class KnownLabels:
    workflows: Sequence[KnownWorkflow] = ()
    ai_models: Sequence[str] = ()


def known_label_sets(known: KnownLabels) -> dict[str, list[dict[str, str]]]:
    """Catalogue name -> the label sets that should exist, 0 until recorded."""
    sets: dict[str, list[dict[str, str]]] = {
        name: []
        for name in (
            "workflow_executions_total",
            "workflow_execution_duration_seconds",
            "workflow_execution_errors_total",
            "events_received_total",
            "approvals_total",
            "approvals_duration_seconds",
            "workflow_step_retries_total",
        )
    }
    events: set[str] = set()
    for workflow in known.workflows:
        slug = workflow.slug
        for trigger in dict.fromkeys((workflow.trigger_type, MANUAL_TRIGGER)):
            for status in FINAL_EXECUTION_STATUSES:
                sets["workflow_executions_total"].append(
                    {"workflow_id": slug, "status": status, "trigger_type": trigger}
                )
        sets["workflow_execution_duration_seconds"].append({"workflow_id": slug})
        for error_type in EXECUTION_ERROR_TYPES:
            sets["workflow_execution_errors_total"].append(
                {"workflow_id": slug, "error_type": error_type}
            )
        if workflow.trigger_event:
            events.add(workflow.trigger_event)
        for step in workflow.retried_steps:
            sets["workflow_step_retries_total"].append({"workflow_id": slug, "step_name": step})
        if workflow.asks_approval:
            for outcome in APPROVAL_OUTCOMES:
                sets["approvals_total"].append({"status": outcome, "workflow_id": slug})
            sets["approvals_duration_seconds"].append({"workflow_id": slug})
    sets["events_received_total"] = [{"event_type": event} for event in sorted(events)]
    sets["ai_requests_total"] = [
        {"model": model, "status": status} for model in known.ai_models for status in AI_STATUSES
    ]
    sets["ai_request_duration_seconds"] = [{"model": model} for model in known.ai_models]
    sets["notifications_sent_total"] = [
        {"type": channel, "status": status}
        for channel in NOTIFICATION_CHANNELS
        for status in NOTIFICATION_STATUSES
    ]
    return sets


def _family_name(name: str, kind: str) -> str:
    # prometheus_client names a counter's family without its _total suffix.
    return name.removesuffix("_total") if kind == "counter" else name


def _key(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, v in labels.items() if k != "le")


def _zero_samples(name: str, kind: str, labels: dict[str, str]) -> list[Sample]:
    if kind == "counter":
        return [Sample(name, labels, 0.0)]
    if kind == "histogram":
        bounds = getattr(metrics.CATALOGUE[name].metric, "_upper_bounds", ())
        buckets = [
            Sample(f"{name}_bucket", {**labels, "le": floatToGoString(bound)}, 0.0)
            for bound in bounds
        ]
        return [*buckets, Sample(f"{name}_count", labels, 0.0), Sample(f"{name}_sum", labels, 0.0)]
    return [Sample(name, labels, 0.0)]


def fill_known_series(
    families: Iterable[Metric], label_sets: Mapping[str, Iterable[dict[str, str]]]
) -> list[Metric]:
    """``families`` with a zero series added for every label set none of them records."""
    result = list(families)
    by_name = {family.name: family for family in result}
    for name, wanted in label_sets.items():
        spec = metrics.CATALOGUE[name]
        family = by_name.get(_family_name(name, spec.kind))
        if family is None:
            family = Metric(_family_name(name, spec.kind), spec.documentation, spec.kind)
            result.append(family)
        primary = f"{name}_count" if spec.kind == "histogram" else name
        present = {_key(sample.labels) for sample in family.samples if sample.name == primary}
        for labels in wanted:
            key = _key(labels)
            if key not in present:
                present.add(key)
                family.samples.extend(_zero_samples(name, spec.kind, labels))
    return result


class KnownSeries:
    """The known label sets of one target, read through ``fetch`` at each scrape.

    ``names`` limits the families to those the target's processes record (the
    API does not send notifications; workers answer no AI requests). A failing
    ``fetch`` adds nothing: the scrape goes on with what was recorded.
    """

    def __init__(
        self, fetch: Callable[[], KnownLabels], names: Iterable[str] | None = None
    ) -> None:
        self._fetch = fetch
        self._names = frozenset(names) if names is not None else None

    def label_sets(self) -> dict[str, list[dict[str, str]]]:
        sets = known_label_sets(self._fetch())
        if self._names is None:
            return sets
        return {name: labels for name, labels in sets.items() if name in self._names}


API_FAMILIES = frozenset(
    {
        "events_received_total",
        "ai_requests_total",
        "ai_request_duration_seconds",
        # Decisions and cancellations are recorded by the API process that makes them.
        "approvals_total",
        "approvals_duration_seconds",
        "workflow_executions_total",
        "workflow_execution_duration_seconds",
        "workflow_execution_errors_total",
    }
)
WORKER_FAMILIES = frozenset(
    {
        "workflow_step_retries_total",
        "workflow_executions_total",
        "workflow_execution_duration_seconds",
        "workflow_execution_errors_total",
        "approvals_total",
        "approvals_duration_seconds",
        "notifications_sent_total",
    }
)
