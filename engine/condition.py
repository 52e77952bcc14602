"""Conditions: ``{field, operator, value}`` leaves combined with ``and``/``or``/``not``.

Semantics (SPEC §2 Conditions), chosen so that missing data is never an error:

* ``field`` is a dotted path with ``[i]`` indexes; ``x.length`` is a length.
* ``value`` is rendered first, so ``"{{ customer.billing_address.country }}"``
  compares with the raw value found in the context.
* A missing field (or one holding ``null``) makes the leaf false, except
  ``not_exists`` and ``is_empty``, which are true. ``neq``/``not_in``/
  ``not_contains`` are false too: "unknown" is not "different".
* Numbers and numeric strings compare numerically (``"100" == 100``,
  ``"007" == 7``). Booleans only equal booleans and the strings
  ``"true"``/``"false"``; ``true`` does not equal ``1``.
* Ordering (``gt``...) works on two numbers or two non-numeric strings
  (lexicographic, which orders ISO dates); anything else is false.
* ``regex`` uses ``re.search`` on text of at most ``MAX_REGEX_INPUT``
  characters (longer input: false), with patterns of at most
  ``MAX_REGEX_LENGTH`` characters. Python's ``re`` cannot be interrupted, so
  validation also refuses nested unbounded quantifiers (``(a+)+``), the classic
  catastrophic form; overlapping alternations (``(a|a)*``) are not detected.
* ``{rule_id: X}`` holds when every condition of rule X holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.errors import EngineError, Problem, UnknownRuleError
from engine.templating import contains_template

__all__ = [
    "OPERATORS",
    "LeafDecision",
    "UnknownRuleError",
    "condition_problems",
    "evaluate",
    "evaluate_with_trace",
    "lookup",
    "parse_path",
    "regex_problem",
]

ALIASES = {"==": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
CANONICAL_OPERATORS = frozenset(
    {"eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains"}
    | {"starts_with", "ends_with", "regex", "exists", "not_exists", "is_empty"}
)
OPERATORS = CANONICAL_OPERATORS | frozenset(ALIASES)
VALUELESS_OPERATORS = frozenset({"exists", "not_exists", "is_empty"})
# Operators that hold when the field is missing.
TRUE_WHEN_MISSING = frozenset({"not_exists", "is_empty"})
MAX_REGEX_LENGTH = 512
MAX_REGEX_INPUT = 10_000
MAX_DEPTH = 32
COMBINATORS = ("and", "or", "not", "rule_id")

RuleLookup = Callable[[str], Sequence[Mapping[str, Any]] | None]
Render = Callable[[Any], Any]

_PATH = re.compile(r"[^.\[\]]+(?:\[-?\d+\])*(?:\.[^.\[\]]+(?:\[-?\d+\])*)*")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_UNBOUNDED_BRACE = re.compile(r"\{\d*,\}")


@dataclass(frozen=True)
class LeafDecision:
    """How one leaf was decided, for dry runs and traces."""

    field: str
    operator: str
    expected: Any
    actual: Any
    found: bool
    result: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "operator": self.operator,
            "expected": self.expected,
            "actual": self.actual,
            "found": self.found,
            "result": self.result,
        }


def parse_path(path: str) -> list[str | int] | None:
    """``"a.b[0].c"`` -> ``["a", "b", 0, "c"]``; None when the path is malformed."""
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        return None
    return [name if name else int(index) for name, index in _SEGMENT.findall(path)]


def lookup(context: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """``(found, value)`` of a field path in the context; never raises."""
    segments = parse_path(path)
    if segments is None:
        return False, None
    current: Any = context
    for segment in segments:
        found, current = _step_into(current, segment)
        if not found:
            return False, None
    return True, current


def _step_into(current: Any, segment: str | int) -> tuple[bool, Any]:
    if isinstance(current, Mapping):
        if segment in current:
            return True, current[segment]
        if segment == "length":
            return True, len(current)
        return False, None
    if isinstance(current, list | tuple):
        if segment == "length":
            return True, len(current)
        index = int(segment) if isinstance(segment, str) and segment.isdigit() else segment
        if isinstance(index, int) and -len(current) <= index < len(current):
            return True, current[index]
        return False, None
    if isinstance(current, str) and segment == "length":
        return True, len(current)
    return False, None


def evaluate(
    condition: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    render: Render,
    rules: RuleLookup | None = None,
) -> bool:
    """Whether ``condition`` holds in ``context``."""
    return _Evaluator(context, render, rules, trace=None).run(condition, 0)


def evaluate_with_trace(
    condition: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    render: Render,
    rules: RuleLookup | None = None,
) -> tuple[bool, list[LeafDecision]]:
    """The verdict and every leaf decision, in evaluation order.

    Every child of ``and``/``or`` is evaluated (no short cut) so that the trace
    explains the whole condition; evaluation has no side effects.
    """
    trace: list[LeafDecision] = []
    verdict = _Evaluator(context, render, rules, trace).run(condition, 0)
    return verdict, trace


class _Evaluator:
    def __init__(
        self,
        context: Mapping[str, Any],
        render: Render,
        rules: RuleLookup | None,
        trace: list[LeafDecision] | None,
    ) -> None:
        self.context = context
        self.render = render
        self.rules = rules
        self.trace = trace

    def run(self, condition: Mapping[str, Any], depth: int) -> bool:
        if depth > MAX_DEPTH:
            raise EngineError(f"condition nested deeper than {MAX_DEPTH} levels")
        if "and" in condition:
            return all(self.run_all(condition["and"], depth))
        if "or" in condition:
            return any(self.run_all(condition["or"], depth))
        if "not" in condition:
            return not self.run(condition["not"], depth + 1)
        if "rule_id" in condition:
            return self.run_rule(str(condition["rule_id"]), depth)
        return self.run_leaf(condition)

    def run_all(self, children: Sequence[Mapping[str, Any]], depth: int) -> list[bool]:
        # Every child, no short cut: the trace explains the whole condition.
        return [self.run(child, depth + 1) for child in children]

    def run_rule(self, rule_id: str, depth: int) -> bool:
        conditions = self.rules(rule_id) if self.rules is not None else None
        if conditions is None:
            raise UnknownRuleError(rule_id)
        verdict = all(self.run_all(conditions, depth))
        self.record(LeafDecision(f"rule:{rule_id}", "rule", None, None, True, verdict))
        return verdict

    def run_leaf(self, leaf: Mapping[str, Any]) -> bool:
        field = str(leaf.get("field", ""))
        operator = ALIASES.get(leaf.get("operator", ""), leaf.get("operator", ""))
        expected = self.render(leaf.get("value"))
        found, actual = lookup(self.context, field)
        present = found and actual is not None
        if not present:
            result = operator in TRUE_WHEN_MISSING and expected is not False
        else:
            result = _apply(operator, actual, expected)
        self.record(LeafDecision(field, operator, expected, actual, found, result))
        return result

    def record(self, decision: LeafDecision) -> None:
        if self.trace is not None:
            self.trace.append(decision)


def _apply(operator: str, actual: Any, expected: Any) -> bool:
    if operator in ("eq", "neq"):
        return _equal(actual, expected) == (operator == "eq")
    if operator in ("gt", "gte", "lt", "lte"):
        order = _order(actual, expected)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[operator]
    if operator in ("in", "not_in"):
        member = _member(actual, expected)
        return member is not None and member == (operator == "in")
    if operator in ("contains", "not_contains"):
        member = _member(expected, actual)
        return member is not None and member == (operator == "contains")
    if operator in ("starts_with", "ends_with"):
        text, affix = _text(actual), _text(expected)
        if text is None or affix is None:
            return False
        return text.startswith(affix) if operator == "starts_with" else text.endswith(affix)
    if operator == "regex":
        return _regex_search(expected, actual)
    if operator == "exists":
        return expected is not False
    if operator == "not_exists":
        return expected is False
    if operator == "is_empty":
        empty = actual in ("", [], {})
        return empty if expected is not False else not empty
    return False


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        a, b = _boolean(left), _boolean(right)
        return a is not None and a == b
    a_num, b_num = _number(left), _number(right)
    if a_num is not None and b_num is not None:
        return a_num == b_num
    return (
        bool(left == right) if type(left) is type(right) or _both_sequences(left, right) else False
    )


def _both_sequences(left: Any, right: Any) -> bool:
    return isinstance(left, list | tuple) and isinstance(right, list | tuple)


def _order(left: Any, right: Any) -> int | None:
    a_num, b_num = _number(left), _number(right)
    if a_num is not None and b_num is not None:
        return (a_num > b_num) - (a_num < b_num)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    return None


def _member(item: Any, collection: Any) -> bool | None:
    """Whether ``item`` is in ``collection``; None when the question makes no sense."""
    if isinstance(collection, list | tuple):
        return any(_equal(item, candidate) for candidate in collection)
    if isinstance(collection, str):
        text = _text(item)
        return None if text is None else text in collection
    if isinstance(collection, Mapping):
        return isinstance(item, str) and item in collection
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _regex_search(pattern: Any, actual: Any) -> bool:
    text = _text(actual)
    if not isinstance(pattern, str) or text is None or len(text) > MAX_REGEX_INPUT:
        return False
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(text) is not None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    # Patterns can come from templates at run time: an unsafe one is a false
    # leaf, not a crash.
    if regex_problem(pattern) is not None:
        return None
    return re.compile(pattern)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused (too long, invalid, nested quantifiers), or None."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"regex is longer than {MAX_REGEX_LENGTH} characters"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"regex does not compile: {exc}"
    if _has_nested_quantifier(pattern):
        return "regex nests unbounded quantifiers (like '(a+)+'), which can take exponential time"
    return None


def _has_nested_quantifier(pattern: str) -> bool:
    # One flag per open group: "does this group contain an unbounded repeat?"
    groups = [False]
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A "]" right after "[" or "[^" is a literal, not the end of the class.
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif char == "(":
            groups.append(False)
        elif char == ")" and len(groups) > 1:
            inner = groups.pop()
            repeated = _unbounded_at(pattern, i + 1)
            if inner and repeated:
                return True
            groups[-1] = groups[-1] or inner or repeated
        elif _unbounded_at(pattern, i):
            groups[-1] = True
        i += 1
    return False


def _unbounded_at(pattern: str, index: int) -> bool:
    return pattern[index : index + 1] in ("*", "+") or bool(_UNBOUNDED_BRACE.match(pattern, index))


def condition_problems(condition: Any, path: str, depth: int = 0) -> list[Problem]:
    """Structural problems of a condition tree, each at its JSON path."""
    if not isinstance(condition, Mapping):
        return [Problem(path, "must be an object")]
    if depth > MAX_DEPTH:
        return [Problem(path, f"condition nested deeper than {MAX_DEPTH} levels")]
    kinds = [key for key in COMBINATORS if key in condition]
    if "field" in condition or "operator" in condition:
        kinds.append("field")
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "nothing"
        return [
            Problem(path, f"needs exactly one of and, or, not, rule_id or field; found {found}")
        ]
    kind = kinds[0]
    if kind in ("and", "or"):
        children = condition[kind]
        if not isinstance(children, list) or not children:
            return [Problem(f"{path}.{kind}", "must be a non-empty list of conditions")]
        problems: list[Problem] = []
        for index, child in enumerate(children):
            problems += condition_problems(child, f"{path}.{kind}[{index}]", depth + 1)
        return problems
    if kind == "not":
        return condition_problems(condition["not"], f"{path}.not", depth + 1)
    if kind == "rule_id":
        rule_id = condition["rule_id"]
        if not isinstance(rule_id, str) or not rule_id:
            return [Problem(f"{path}.rule_id", "must be a non-empty string")]
        return []
    return _leaf_problems(condition, path)


def _leaf_problems(leaf: Mapping[str, Any], path: str) -> list[Problem]:
    problems = []
    field = leaf.get("field")
    if not isinstance(field, str) or not field:
        problems.append(
            Problem(f"{path}.field", "is required: a dotted path such as 'order.total'")
        )
    elif parse_path(field) is None:
        problems.append(Problem(f"{path}.field", f"{field!r} is not a valid field path"))
    operator = leaf.get("operator")
    if not isinstance(operator, str) or operator not in OPERATORS:
        known = ", ".join(sorted(CANONICAL_OPERATORS))
        problems.append(
            Problem(f"{path}.operator", f"unknown operator {operator!r}; use one of {known}")
        )
        return problems
    operator = ALIASES.get(operator, operator)
    value = leaf.get("value")
    if operator not in VALUELESS_OPERATORS and "value" not in leaf:
        problems.append(Problem(f"{path}.value", f"is required by operator {operator!r}"))
    elif operator == "regex":
        if not isinstance(value, str):
            problems.append(Problem(f"{path}.value", "must be a regular expression string"))
        elif not contains_template(value):
            reason = regex_problem(value)
            if reason is not None:
                problems.append(Problem(f"{path}.value", reason))
    elif operator in ("in", "not_in") and not isinstance(value, list | str):
        problems.append(
            Problem(f"{path}.value", f"operator {operator!r} needs a list (or a template)")
        )
    elif operator in VALUELESS_OPERATORS and "value" in leaf and not isinstance(value, bool):
        problems.append(
            Problem(f"{path}.value", f"operator {operator!r} takes no value (or true/false)")
        )
    return problems
