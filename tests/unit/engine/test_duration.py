from datetime import timedelta

import pytest

from engine.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("1.5h", timedelta(minutes=90)),
        (" 10M ", timedelta(minutes=10)),
        ("45", timedelta(seconds=45)),
        (45, timedelta(seconds=45)),
        (0.25, timedelta(milliseconds=250)),
    ],
)
def test_durations_parse_in_every_documented_form(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-5s", "soon", True, None, [1], -1])
def test_bad_durations_raise_a_clear_value_error(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_absurdly_long_durations_are_refused():
    with pytest.raises(ValueError, match="3650 days"):
        parse_duration("100000d")


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=2), "2d"),
        (timedelta(days=1, seconds=1, milliseconds=1), "1d1s1ms"),
    ],
)
def test_durations_format_to_the_shortest_parseable_text(td, text):
    assert format_duration(td) == text
    assert parse_duration(text) == td


def test_negative_durations_cannot_be_formatted():
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))
