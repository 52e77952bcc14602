"""OpenAPI helpers shared by the identity blueprints (auth, api_keys, organizations, audit).

flask-smorest ships no type information, so its decorators would make every view
untyped for mypy; `resource_blueprint` gives its Blueprint the signatures we use.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Protocol, TypeVar, cast

from flask_smorest import Blueprint

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# OpenAPI `security` of an endpoint that needs no credentials (the default needs one).
PUBLIC: list[dict[str, list[str]]] = []

# What most authenticated endpoints can answer besides their success.
AUTHENTICATED_ERRORS = (401, 403, 429)


class ResourceBlueprint(Protocol):
    """The part of flask_smorest.Blueprint that resources use, typed."""

    name: str

    def route(self, rule: str, **options: Any) -> Callable[[T], T]: ...

    def arguments(self, schema: Any, **options: Any) -> Callable[[F], F]: ...

    def response(
        self, status_code: int, schema: Any = None, **options: Any
    ) -> Callable[[F], F]: ...

    def alt_response(
        self, status_code: int, response: Any = None, **options: Any
    ) -> Callable[[F], F]: ...

    def doc(self, **options: Any) -> Callable[[F], F]: ...


def resource_blueprint(name: str, import_name: str, description: str) -> ResourceBlueprint:
    return cast(ResourceBlueprint, Blueprint(name, import_name, description=description))


def error_responses(blp: ResourceBlueprint, *codes: int) -> Callable[[F], F]:
    """Document error responses for `codes`, each in the one error shape (ErrorSchema)."""

    def decorate(view: F) -> F:
        for code in codes:
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorate
