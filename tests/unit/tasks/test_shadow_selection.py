"""Which recorded events a shadow report reads: the triggers' globs said in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql

from tasks.shadow import Selection, _type_filter


def sql(clause: Any) -> str:
    return str(clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def test_exact_types_are_compared_and_globs_become_like_with_their_wildcards_escaped() -> None:
    said = sql(_type_filter(["order.placed", "refund_*.?"]))
    assert "events.event_type = 'order.placed'" in said
    # `_` escaped (a literal underscore), `*` and `?` as LIKE's `%` and `_` (`%%`: the
    # driver's own escape of `%`, in this compiled form only).
    assert "events.event_type LIKE 'refund\\_%%._'" in said


def test_a_trigger_that_is_not_an_events_reads_nothing_and_a_class_reads_every_type() -> None:
    assert sql(_type_filter([None, None])) == "false"
    assert sql(_type_filter([None, "order.placed"])) == "events.event_type = 'order.placed'"
    assert _type_filter(["order.[ab]"]) is None


def test_a_selection_round_trips_through_its_stored_form() -> None:
    stored = {
        "since": "2026-12-01T00:00:00+00:00",
        "until": None,
        "event_ids": ["6f0e1a52-1d1c-4f55-9d59-0a4c1f1b2c3d"],
        "limit": 5,
    }
    assert Selection.from_dict(stored).to_dict() == stored
