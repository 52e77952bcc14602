"""What a client may send: only values Postgres can store, checked before any view runs.

Postgres refuses NUL (U+0000) in `text` and `jsonb`, psycopg2 cannot encode a lone
surrogate (U+D800..U+DFFF, which JSON's `\\ud800` escapes produce), and `jsonb` has
no NaN or Infinity (Python's json module reads `NaN`, `Infinity` and `1e400`). Each
of these used to reach the driver and come back as a 500. `guard_request` refuses
them in the query string, the path, the headers and the JSON body, once for every
endpoint, with a 422 naming where; an over-long header is a 431.

`Timestamp` is the date-time field of every filter: an offset a place on Earth
has (UTC-12:00 to UTC+14:00), normalised to UTC, within years 1 to 9999 in UTC.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import current_app, request
from marshmallow import ValidationError, fields

from api.errors import abort

# Header fields longer than this are answered 431 in the error shape. gunicorn's
# own limit (gunicorn.conf.py) is set higher, so that such headers reach the app.
MAX_HEADER_BYTES = 8192
MAX_JSON_DEPTH = 100
_CHECKS_ITEMS = "_iw_checks_its_items"
F = TypeVar("F", bound=Callable[..., Any])

NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
SURROGATE_MESSAGE = "must not contain lone surrogate code points (\\ud800-\\udfff)"
NUMBER_MESSAGE = "must be a finite number (no NaN, Infinity or overflowing exponent)"
DEPTH_MESSAGE = f"must not nest deeper than {MAX_JSON_DEPTH} levels"

# A body without any of these cannot hold a NUL, a lone surrogate or a non-finite
# number (strict JSON has them only as escapes, as literals, or as numbers with a
# three-digit exponent or hundreds of digits), so the hot path skips the walk.
_SUSPECT = re.compile(rb"\\u|NaN|Infinity|[0-9][eE][+-]?[0-9]{3}|[0-9]{300}")


def text_problem(value: str) -> str | None:
    """Why Postgres could not store this string, or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def json_problem(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """The first (path, problem) of a parsed JSON value Postgres could not store."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, NUMBER_MESSAGE)
    if isinstance(value, dict | list):
        if depth >= MAX_JSON_DEPTH:
            return (path, DEPTH_MESSAGE)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            where = f"{path}[{key}]" if isinstance(key, int) else _join(path, key)
            if isinstance(key, str) and (problem := text_problem(key)):
                return (where, problem)
            found = json_problem(item, where, depth + 1)
            if found:
                return found
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def guard_request() -> None:
    """Refuse, before any view, input that would reach Postgres and fail there."""
    for name, value in request.headers.items():
        if len(value) > MAX_HEADER_BYTES:
            abort(431, f"The {name} header is longer than {MAX_HEADER_BYTES} bytes")
        if "\x00" in value:
            abort(422, "The request did not validate", {name: [NUL_MESSAGE]})
    for name, values in request.args.lists():
        for text in (name, *values):
            if problem := text_problem(text):
                abort(422, "The request did not validate", {name: [problem]})
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and (problem := text_problem(value)):
            abort(422, "The request did not validate", {name: [problem]})
    if request.is_json:
        view = current_app.view_functions.get(request.endpoint or "")
        _guard_json_body(request.get_data(cache=True), walk=not getattr(view, _CHECKS_ITEMS, False))


def checks_its_items(view: F) -> F:
    """A view whose body is a list of items answered one by one (POST /events/batch):
    the guard still refuses a body it cannot read, but leaves a value Postgres could
    not store to the view, which rejects only the item holding it (json_problem)."""
    setattr(view, _CHECKS_ITEMS, True)
    return view


def _guard_json_body(raw: bytes, *, walk: bool = True) -> None:
    if not raw:
        return
    deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
    if not deep and not _SUSPECT.search(raw):
        return
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return  # not JSON: the view's own parser answers that, in the error shape
    except (ValueError, RecursionError) as exc:  # too many digits, too deep
        abort(400, f"The JSON body could not be read: {exc}")
    found = json_problem(document) if walk else None
    if found:
        where, problem = found
        abort(422, "The request did not validate", {where or "body": [problem]})


class Timestamp(fields.AwareDateTime):
    """An ISO 8601 instant as Postgres stores it: offset within UTC-12:00..+14:00
    (none means UTC), converted to UTC, between years 1 and 9999 in UTC."""

    MIN_OFFSET = timedelta(hours=-12)
    MAX_OFFSET = timedelta(hours=14)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        offset = moment.utcoffset() or timedelta(0)
        if not self.MIN_OFFSET <= offset <= self.MAX_OFFSET:
            raise ValidationError("The UTC offset must be between -12:00 and +14:00.")
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("Must be between years 1 and 9999 in UTC.") from exc
