from datetime import UTC, datetime

import pytest

from engine.schedule import latest_due, next_runs, validate_cron

AFTER = datetime(2024, 3, 30, 23, 0, tzinfo=UTC)


def test_five_field_cron_runs_every_six_hours():
    assert next_runs("0 */6 * * *", "UTC", AFTER, 3) == [
        datetime(2024, 3, 31, 0, 0, tzinfo=UTC),
        datetime(2024, 3, 31, 6, 0, tzinfo=UTC),
        datetime(2024, 3, 31, 12, 0, tzinfo=UTC),
    ]


def test_six_field_cron_has_seconds_first():
    assert next_runs("30 0 * * * *", "UTC", AFTER, 2) == [
        datetime(2024, 3, 30, 23, 0, 30, tzinfo=UTC),
        datetime(2024, 3, 31, 0, 0, 30, tzinfo=UTC),
    ]


def test_descriptors_are_accepted():
    assert next_runs("@hourly", "UTC", AFTER, 1) == [datetime(2024, 3, 31, 0, 0, tzinfo=UTC)]
    assert next_runs("@daily", "UTC", AFTER, 1) == [datetime(2024, 3, 31, 0, 0, tzinfo=UTC)]


def test_the_timezone_decides_local_time_across_daylight_saving():
    # Paris moves to UTC+2 on 31 March 2024.
    assert next_runs("0 9 * * *", "Europe/Paris", AFTER, 2) == [
        datetime(2024, 3, 31, 7, 0, tzinfo=UTC),
        datetime(2024, 4, 1, 7, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("expr", "tz", "fragment"),
    [
        ("61 * * * *", "UTC", "invalid cron"),
        ("* * * *", "UTC", "has 4 fields"),
        ("* * * * * * *", "UTC", "has 7 fields"),
        ("@reboot", "UTC", "unknown cron descriptor"),
        ("", "UTC", "non-empty"),
        ("0 * * * *", "Mars/Olympus", "unknown timezone"),
    ],
)
def test_bad_cron_and_timezones_are_reported(expr, tz, fragment):
    problems = validate_cron(expr, tz)
    assert any(fragment in p for p in problems), problems


def test_good_cron_has_no_problems():
    assert validate_cron("0 */6 * * *", "America/New_York") == []


def test_next_runs_refuses_naive_times_and_bad_cron():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_runs("@hourly", "UTC", datetime(2024, 1, 1), 1)
    with pytest.raises(ValueError, match="invalid cron"):
        next_runs("99 * * * *", "UTC", AFTER, 1)


def test_missed_runs_fire_once_at_the_latest_due_time():
    last = datetime(2024, 3, 29, 0, 0, tzinfo=UTC)
    assert latest_due("0 */6 * * *", "UTC", last, AFTER) == datetime(2024, 3, 30, 18, tzinfo=UTC)


def test_a_run_due_exactly_now_is_due_and_nothing_is_due_twice():
    due = datetime(2024, 3, 30, 18, tzinfo=UTC)
    last = datetime(2024, 3, 30, 12, tzinfo=UTC)
    assert latest_due("0 */6 * * *", "UTC", last, due) == due
    assert latest_due("0 */6 * * *", "UTC", due, due) is None
