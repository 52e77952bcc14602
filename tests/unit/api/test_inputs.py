"""The input guards' pure parts: what Postgres could not store, and where it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from marshmallow import Schema, ValidationError

from api.inputs import (
    DEPTH_MESSAGE,
    MAX_JSON_DEPTH,
    NUL_MESSAGE,
    NUMBER_MESSAGE,
    SURROGATE_MESSAGE,
    Timestamp,
    json_problem,
    text_problem,
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plain", None),
        ("crème brûlée ✓ 😀", None),
        ("a\x00b", NUL_MESSAGE),
        ("\ud800", SURROGATE_MESSAGE),
        ("ok \udfff", SURROGATE_MESSAGE),
    ],
)
def test_text_problem_names_what_postgres_refuses(text: str, problem: str | None) -> None:
    assert text_problem(text) == problem


def test_json_problem_gives_the_path_of_the_first_bad_value() -> None:
    document = json.loads('{"payload": {"items": [{"ok": 1}, {"note": "x\\u0000"}]}}')

    assert json_problem(document) == ("payload.items[1].note", NUL_MESSAGE)


def test_json_problem_checks_keys_and_numbers_and_depth() -> None:
    assert json_problem({"\ud83d": 1}) == ("\ud83d", SURROGATE_MESSAGE)
    assert json_problem({"amount": float("inf")}) == ("amount", NUMBER_MESSAGE)
    deep: object = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    assert json_problem(deep) is not None
    assert json_problem(deep)[1] == DEPTH_MESSAGE  # type: ignore[index]
    assert json_problem({"a": [1, 2.5, "x", None, True]}) is None


class _Window(Schema):
    since = Timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T14:00:00+14:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2025-12-31T12:00:00-12:00", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_timestamp_is_normalised_to_utc(text: str, expected: datetime) -> None:
    since = _Window().load({"since": text})["since"]

    assert since == expected
    assert since.utcoffset() is not None and not since.utcoffset()


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T00:00:00+14:30"],
)
def test_a_timestamp_outside_years_1_to_9999_or_with_an_odd_offset_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        _Window().load({"since": text})
