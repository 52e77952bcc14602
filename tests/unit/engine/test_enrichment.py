"""`context.load` in the pure engine: the layout a load leaves in the context (one writer,
engine.enrichment, for the worker's fetch and the dry run's supplied values), and the
dry run and shadow run that fetch nothing."""

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.context import deep_merge
from engine.dryrun import dry_run
from engine.enrichment import ENRICHMENT_KEY, context_updates, recorded_loads
from engine.state import ExecutionResult
from engine.templating import TemplateRenderer
from tests.unit.engine.fakes import NOW, definition_of

RENDERER = TemplateRenderer()


def gold_check() -> Any:
    definition = definition_of(
        {
            "id": "vip",
            "type": "condition",
            "condition": {"field": "customer.profile.tier", "operator": "eq", "value": "gold"},
            "on_true": "allow",
            "on_false": "block",
        },
        {"id": "allow", "type": "action", "action": "allow"},
        {"id": "block", "type": "action", "action": "block"},
    )
    return replace(definition, context_load=("customer.profile", "order.details"))


def test_a_dry_run_fetches_nothing_and_lists_each_load_it_would_make() -> None:
    report = dry_run(gold_check(), {"customer": {"id": "c1"}}, now=NOW, renderer=RENDERER)
    assert report.result is ExecutionResult.BLOCKED
    loads = [effect for effect in report.effects if effect["kind"] == "load"]
    assert loads == [
        {"kind": "load", "would": "fetch", "resource": "customer.profile"},
        {"kind": "load", "would": "fetch", "resource": "order.details"},
    ]
    assert report.context[ENRICHMENT_KEY]["customer.profile"]["status"] == "skipped"
    assert report.context["customer"] == {"id": "c1"}


def test_supplied_resources_are_merged_as_the_worker_merges_them() -> None:
    report = dry_run(
        gold_check(),
        {"customer": {"id": "c1"}},
        now=NOW,
        renderer=RENDERER,
        loaded={"customer.profile": {"tier": "gold"}},
    )
    assert report.result is ExecutionResult.ALLOWED
    assert report.context["customer"] == {"id": "c1", "profile": {"tier": "gold"}}
    assert report.context[ENRICHMENT_KEY]["customer.profile"] == {"status": "loaded"}
    assert [e["resource"] for e in report.effects if e["kind"] == "load"] == ["order.details"]


def test_a_definition_without_a_load_gets_no_report() -> None:
    definition = replace(gold_check(), context_load=())
    report = dry_run(definition, {}, now=NOW, renderer=RENDERER)
    assert ENRICHMENT_KEY not in report.context
    assert not [effect for effect in report.effects if effect["kind"] == "load"]


def test_only_what_the_report_says_was_loaded_is_taken_back() -> None:
    context = {
        "customer": {"id": "c1", "profile": {"tier": "gold"}},
        "order": {"details": {"carrier": "ups"}},
        ENRICHMENT_KEY: {
            "customer.profile": {"status": "loaded"},
            "order.details": {"status": "error", "error": "404"},
        },
    }
    assert recorded_loads(context, ["customer.profile", "order.details", "missing.one"]) == {
        "customer.profile": {"tier": "gold"}
    }
    assert recorded_loads({"customer": {"profile": {}}}, ["customer.profile"]) == {}


_NAMES = st.sampled_from(["customer", "order", "profile", "details", "tier", "id"])
_VALUES = st.dictionaries(_NAMES, st.integers() | st.text(max_size=3), min_size=1, max_size=3)
# Resources under distinct top-level keys, so no resource nests inside another.
_LOADS = st.dictionaries(_NAMES, st.tuples(st.lists(_NAMES, max_size=2), _VALUES), max_size=3)


@given(payload=st.dictionaries(_NAMES, st.integers(), max_size=3), loads=_LOADS)
def test_what_a_load_writes_reads_back_the_same(
    payload: dict[str, Any], loads: dict[str, Any]
) -> None:
    values = {".".join([top, *rest]): value for top, (rest, value) in loads.items()}
    report = {resource: {"status": "loaded"} for resource in values}
    context = deep_merge(payload, context_updates(values, report))
    assert recorded_loads(context, list(values)) == values
