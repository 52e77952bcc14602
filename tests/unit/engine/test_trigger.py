import pytest

from engine.condition import evaluate
from engine.definition import Trigger
from engine.trigger import event_matches


def by_payload(condition, payload):
    return evaluate(condition, payload, render=lambda value: value)


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("order.created", "order.created", True),
        ("order.created", "order.created.v2", False),
        ("order.*", "order.created", True),
        ("order.*", "orders.created", False),
        ("*", "anything.at.all", True),
        ("Order.*", "order.created", False),
    ],
)
def test_event_types_match_exactly_or_by_glob(pattern, event_type, expected):
    trigger = Trigger(type="event", event=pattern)
    assert event_matches(trigger, event_type, {}, by_payload) is expected


def test_the_filter_is_a_condition_on_the_payload():
    trigger = Trigger(
        type="event",
        event="order.*",
        filter={"field": "order.total", "operator": "gt", "value": 100},
    )
    assert event_matches(trigger, "order.created", {"order": {"total": 500}}, by_payload)
    assert not event_matches(trigger, "order.created", {"order": {"total": 5}}, by_payload)
    assert not event_matches(trigger, "order.created", {}, by_payload)


def test_schedule_and_manual_triggers_match_no_event():
    assert not event_matches(Trigger(type="schedule", cron="@hourly"), "x", {}, by_payload)
    assert not event_matches(Trigger(type="manual"), "x", {}, by_payload)
