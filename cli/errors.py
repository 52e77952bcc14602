"""The CLI's errors and its exit codes.

0  success
1  the input or what it names is wrong: an unreadable file, invalid JSON, an
   invalid workflow, or an API answer about the request (400, 404, 409, 413, 422)
2  usage: unknown command or option, missing argument (click)
3  the API or the connection failed or refused the caller: cannot reach the
   API, timeouts, 401/403 (not logged in, bad or expired credentials, missing
   permission), 429, 5xx, an answer that is not the API's
4  a check found a problem: `iwctl audit verify` found the audit chain broken
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

import click

EXIT_USER = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_CHECK_FAILED = 4
# API answers about the request itself: fixing the input fixes them.
REQUEST_STATUSES = frozenset({400, 404, 409, 413, 422})


class CliError(click.ClickException):
    """An expected failure: printed as `error: ...` without a traceback."""

    exit_code = EXIT_USER

    def __init__(self, message: str, details: Iterable[str] = (), hint: str | None = None) -> None:
        super().__init__(message)
        self.details = list(details)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)
        for line in self.details:
            click.echo(f"  {line}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


class UserError(CliError):
    exit_code = EXIT_USER


class ApiError(CliError):
    """The API answered with an error (its one error shape): it failed or refused us."""

    exit_code = EXIT_API

    def __init__(
        self,
        status: int,
        message: str,
        errors: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{message} (HTTP {status})", _error_lines(errors), hint)
        self.status = status
        self.api_message = message
        self.errors = errors


class ApiRequestError(ApiError):
    """The API refused the request for its content (400, 404, 409, 413, 422)."""

    exit_code = EXIT_USER


def api_error(status: int, message: str, errors: Any = None, hint: str | None = None) -> ApiError:
    kind = ApiRequestError if status in REQUEST_STATUSES else ApiError
    return kind(status, message, errors, hint)


class CheckFailed(CliError):
    """The request succeeded and what it checked is wrong (a broken audit chain)."""

    exit_code = EXIT_CHECK_FAILED


class UnreachableError(CliError):
    exit_code = EXIT_API


def _error_lines(errors: Any, prefix: str = "") -> list[str]:
    """`{path: [messages]}` (possibly nested, as marshmallow reports) as `path: message` lines."""
    if isinstance(errors, dict):
        lines: list[str] = []
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix and key else (prefix or str(key))
            lines += _error_lines(value, path)
        return lines
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return [f"{prefix or '<root>'}: {message}" for message in errors]
    if isinstance(errors, list):
        return [line for item in errors for line in _error_lines(item, prefix)]
    if errors is None:
        return []
    return [f"{prefix or '<root>'}: {errors}"]
