"""``{{ expr }}`` templates in step configuration, rendered in Jinja2's sandbox.

Rules (SPEC §2 Templates):

* every string of a value is rendered against the context; dict keys are not;
* a string that is exactly one ``{{ expr }}`` yields the raw value (a number,
  list, object, bool or None) instead of its text;
* a missing field renders as ``""`` inside text and as ``None`` as a whole value
  (lenient, chainable undefined: ``{{ a.b.c }}`` with no ``a`` is not an error);
* ``x.length`` is ``len(x)`` for strings, lists and objects without a ``length``
  key; on an object, keys win over methods (``order.items`` is the ``items``
  field, not ``dict.items``);
* ``secrets.NAME`` reads a configured secret; ``render_for_trace`` renders with
  every secret shown as ``***`` so that traces never hold one.

Runtime failures (type errors, sandbox refusals, division by zero, operations
on a missing value) raise :class:`TemplateError` naming the template.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import Problem, TemplateError

MAX_TEMPLATE_LENGTH = 10_000
# Bounds what one expression can build: "x" * 10**9 would exhaust a worker.
MAX_BUILT_LENGTH = 100_000
MAX_EXPONENT = 1_000
REDACTED = "***"
# Secrets shorter than this are not scrubbed out of arbitrary text: replacing
# every "1" or "ab" in a trace would destroy it and protect nothing.
MIN_SCRUBBED_SECRET_LENGTH = 4

_SINGLE_EXPRESSION = re.compile(r"\{\{-?((?:(?!\}\}|\{\{).)*?)-?\}\}", re.DOTALL)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # JSON objects are dicts: a field named like a dict method ("items",
        # "keys", "values") must give the field, as users of the original expect.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        if attribute == "length" and isinstance(obj, str | list | tuple | Mapping):
            return len(obj)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def _check_repeat(sequence: Any, count: Any) -> None:
    sized = isinstance(sequence, str | list | tuple) and isinstance(count, int)
    if sized and len(sequence) * count > MAX_BUILT_LENGTH:
        raise SecurityError(f"repetition would build more than {MAX_BUILT_LENGTH} items")


def _new_environment() -> _Environment:
    return _Environment(undefined=ChainableUndefined, autoescape=False)


# Parsing for validation needs no secrets and no cache per renderer.
_PARSER = _new_environment()


def contains_template(text: str) -> bool:
    return any(marker in text for marker in _TEMPLATE_MARKERS)


def single_expression(text: str) -> str | None:
    """The expression of a string that is exactly one ``{{ expr }}``, else None."""
    match = _SINGLE_EXPRESSION.fullmatch(text)
    return match.group(1) if match else None


def compile_problems(value: Any, path: str) -> list[Problem]:
    """Every string in ``value`` that is not a valid template, at its JSON path."""
    problems = []
    for where, text in _strings(value, path):
        message = _compile_problem(text)
        if message is not None:
            problems.append(Problem(where, message))
    return problems


def _compile_problem(text: str) -> str | None:
    if not contains_template(text):
        return None
    if len(text) > MAX_TEMPLATE_LENGTH:
        return f"template is longer than {MAX_TEMPLATE_LENGTH} characters"
    try:
        _PARSER.parse(text)
    except TemplateSyntaxError as exc:
        return f"template does not compile: {exc.message} (line {exc.lineno}) in {text!r}"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


class TemplateRenderer:
    """Renders templated values against a context. Holds compiled templates (LRU)."""

    def __init__(self, secrets: Mapping[str, str] | None = None, *, cache_size: int = 512) -> None:
        self._secrets = dict(secrets or {})
        self._redacted = dict.fromkeys(self._secrets, REDACTED)
        self._env = _new_environment()
        self._template: Callable[[str], Template] = lru_cache(maxsize=cache_size)(
            self._env.from_string
        )
        self._expression: Callable[[str], Callable[..., Any]] = lru_cache(maxsize=cache_size)(
            self._env.compile_expression
        )

    @staticmethod
    def compile_problems(value: Any, path: str) -> list[Problem]:
        """Same as the module-level ``compile_problems``."""
        return compile_problems(value, path)

    def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """``value`` with every string rendered; raw values for single expressions."""
        return self._walk(value, {**context, "secrets": self._secrets})

    def render_for_trace(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Like ``render`` but every secret appears as ``***`` (for traces and dry runs)."""
        return self.redact(self._walk(value, {**context, "secrets": self._redacted}))

    def redact(self, value: Any) -> Any:
        """``value`` with every occurrence of a secret's value replaced by ``***``."""
        secrets = [s for s in self._secrets.values() if len(s) >= MIN_SCRUBBED_SECRET_LENGTH]
        if not secrets:
            return value
        return _map_strings(value, lambda text: _scrub(text, secrets))

    def _walk(self, value: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            return self._render_string(value, context)
        if isinstance(value, Mapping):
            return {key: self._walk(item, context) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item, context) for item in value]
        return value

    def _render_string(self, text: str, context: Mapping[str, Any]) -> Any:
        if not contains_template(text):
            return text
        if len(text) > MAX_TEMPLATE_LENGTH:
            raise TemplateError(f"template is longer than {MAX_TEMPLATE_LENGTH} characters", text)
        expression = single_expression(text)
        try:
            if expression is not None:
                return _plain(self._expression(expression)(**context))
            return self._template(text).render(context)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template {text!r} does not compile: {exc.message}", text) from exc
        except Exception as exc:
            # Anything a sandboxed expression can throw (TypeError,
            # ZeroDivisionError, SecurityError, UndefinedError...) is the
            # template's fault, reported with the template text.
            raise TemplateError(f"template {text!r} failed: {_describe(exc)}", text) from exc


def _plain(value: Any) -> Any:
    """A JSON-friendly version of what an expression returned."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict | list):
        # A copy: the caller may change what it got without touching the context.
        return copy.deepcopy(value)
    if isinstance(value, Undefined):
        return None
    if isinstance(value, tuple | range):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(item, change) for item in value]
    return value
