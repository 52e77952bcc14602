"""Properties of the engine over generated input (Hypothesis), issue 19.3.

* validation is idempotent under normalisation: whatever validates, validates
  again once normalised, to the same normalised form;
* conditions never raise on any JSON value: checking one, or evaluating a
  valid one against any context, answers problems or a verdict;
* templates never escape the sandbox (no Python object, class or function comes
  out) and stay within their size and time limits.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.condition import OPERATORS, condition_problems, evaluate
from engine.definition import normalise_workflow
from engine.errors import DefinitionError, TemplateError
from engine.templating import MAX_BUILT_LENGTH, TemplateRenderer
from engine.validation import validate_workflow

# No example database: the run writes nothing into the work tree.
FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# JSON values (no NaN or Infinity: JSON has none, and the API refuses them).
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    scalars | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

# --- validation is idempotent under normalisation -----------------------------------

step_ids = st.sampled_from(["a", "b", "c", "d"])
actions = st.sampled_from(["allow", "block", "execute"])


@st.composite
def steps(draw: Any) -> dict[str, Any]:
    """One step in any of the forms the normaliser accepts (legacy ones included)."""
    step_id = draw(step_ids)
    kind = draw(st.sampled_from(["action", "condition", "wait", "execute"]))
    step: dict[str, Any] = {"id": step_id, "type": kind}
    if kind == "action":
        action = draw(actions)
        step["action"] = draw(
            st.sampled_from(
                [action, {"type": action}, {"action": action}, {"action": action, "reason": "r"}]
            )
        )
    elif kind == "condition":
        step["condition"] = {"field": "x", "operator": draw(st.sampled_from(sorted(OPERATORS)))}
        if draw(st.booleans()):
            step["on_true"] = draw(step_ids)
        if draw(st.booleans()):
            step["on_false"] = draw(step_ids)
    elif kind == "wait":
        wait: dict[str, Any] = {"event": "e", "timeout": "1h"}
        if draw(st.booleans()):
            target = draw(step_ids)
            if draw(st.booleans()):
                wait["on_timeout"] = target  # the original service's place for it
            else:
                step["on_timeout"] = target
        step["wait"] = wait
    else:
        step["execute"] = [{"type": "log", "message": draw(st.sampled_from(["hi", "{{ x }}"]))}]
    if draw(st.booleans()):
        step["next"] = draw(step_ids)
    return step


@st.composite
def workflows(draw: Any) -> dict[str, Any]:
    body = {
        "trigger": {"type": "manual"},
        "steps": draw(st.lists(steps(), min_size=1, max_size=4, unique_by=lambda s: s["id"])),
    }
    head = {"workflow_id": "wf", "version": draw(st.sampled_from(["1", 2])), "name": "W"}
    return {**head, "definition": body} if draw(st.booleans()) else {**head, **body}


@FAST
@given(workflows())
def test_validation_is_idempotent_under_normalisation(raw: dict[str, Any]) -> None:
    try:
        normalised = validate_workflow(raw)
    except DefinitionError:
        # What validation refuses, it refuses in the normalised form too: the
        # normaliser cannot turn a broken workflow into a valid one.
        with pytest.raises(DefinitionError):
            validate_workflow(normalise_workflow(raw))
        return
    assert validate_workflow(normalised) == normalised
    assert validate_workflow(normalise_workflow(raw)) == normalised


@FAST
@given(json_values)
def test_validation_never_raises_anything_but_a_definition_error(raw: Any) -> None:
    document = {"workflow_id": "wf", "version": "1", "name": "W", "definition": raw}
    for candidate in (raw, document):
        with contextlib.suppress(DefinitionError):
            validate_workflow(candidate)


# --- conditions never raise on any JSON value ---------------------------------------

operators = st.sampled_from(sorted(OPERATORS)) | st.text(max_size=6)
leaves = st.fixed_dictionaries(
    {"field": st.text(max_size=12) | json_values, "operator": operators},
    optional={"value": json_values},
)
conditions = st.recursive(
    leaves | json_values,
    lambda inner: (
        st.fixed_dictionaries({"and": st.lists(inner, max_size=3)})
        | st.fixed_dictionaries({"or": st.lists(inner, max_size=3)})
        | st.fixed_dictionaries({"not": inner})
    ),
    max_leaves=8,
)
contexts = st.dictionaries(st.sampled_from(["x", "y", "order", "items"]), json_values, max_size=4)


@FAST
@given(conditions)
def test_checking_a_condition_never_raises(condition: Any) -> None:
    problems = condition_problems(condition, "condition")

    assert isinstance(problems, list)


@FAST
@given(conditions, contexts)
def test_a_valid_condition_evaluates_against_any_context_without_raising(
    condition: Any, context: dict[str, Any]
) -> None:
    if condition_problems(condition, "condition"):
        return
    verdict = evaluate(condition, context, render=lambda value: value)

    assert isinstance(verdict, bool)


# --- templates stay in the sandbox and within their limits --------------------------

ATOMS = [
    "x",
    "items",
    "''",
    "'ab'",
    "[]",
    "[1, 2]",
    "{}",
    "7",
    "99999",
    "range(99999)",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "self",
    "loop",
    "config",
    "request",
    "secrets",
    "secrets.token",
]
ATTRIBUTES = [
    "__class__",
    "__mro__",
    "__base__",
    "__subclasses__()",
    "__globals__",
    "__init__",
    "__dict__",
    "__builtins__",
    "_module",
    "gi_frame",
    "func_globals",
    "format",
    "mro()",
    "length",
    "items",
    "keys()",
]
FILTERS = [
    "list",
    "join",
    "string",
    "length",
    "tojson",
    "sum",
    "unique",
    "reverse",
    "attr('__class__')",
]


@st.composite
def expressions(draw: Any, depth: int = 0) -> str:
    if depth >= 3 or draw(st.booleans()):
        return draw(st.sampled_from(ATOMS))
    inner = draw(expressions(depth + 1))
    form = draw(st.sampled_from(["attr", "item", "filter", "binop", "call"]))
    if form == "attr":
        return f"({inner}).{draw(st.sampled_from(ATTRIBUTES))}"
    if form == "item":
        return f"({inner})['{draw(st.sampled_from(ATTRIBUTES)).removesuffix('()')}']"
    if form == "filter":
        return f"({inner})|{draw(st.sampled_from(FILTERS))}"
    if form == "call":
        return f"({inner})()"
    other = draw(expressions(depth + 1))
    return f"({inner}) {draw(st.sampled_from(['*', '**', '+', '~']))} ({other})"


def _is_plain_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_is_plain_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    return False


def _size(value: Any) -> int:
    """Characters and items, all the way down."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return len(value) + sum(_size(item) for item in value)
    return 1


RENDERER = TemplateRenderer({"token": "s3cr3t-value"})
CONTEXT = {"x": "abc", "items": [1, 2, 3]}
# The bound on what one template may produce: building is capped at
# MAX_BUILT_LENGTH items; joining the largest range the sandbox allows (99,999
# numbers) is the most text a filter chain makes from that.
MAX_OUTPUT = 6 * MAX_BUILT_LENGTH
MAX_SECONDS = 2.0


@FAST
@given(expressions(), st.booleans())
def test_templates_never_escape_the_sandbox_nor_their_limits(expression: str, whole: bool) -> None:
    template = f"{{{{ {expression} }}}}" if whole else f"value: {{{{ {expression} }}}}"
    started = time.perf_counter()
    try:
        value = RENDERER.render(template, CONTEXT)
    except TemplateError:
        return  # a refusal, reported with the template: the sandbox held
    finally:
        assert time.perf_counter() - started < MAX_SECONDS, template

    assert _is_plain_json(value), (template, type(value))
    assert _size(value) <= MAX_OUTPUT, template
    try:
        traced = RENDERER.render_for_trace(template, CONTEXT)
    except TemplateError:
        return
    assert "s3cr3t" not in str(traced), template
