"""Settings from the environment: parsed, defaulted, and refused when wrong."""

from __future__ import annotations

import pytest

from models.config import ConfigurationError, load_settings


def test_trusted_proxies_default_to_none() -> None:
    assert load_settings({}).trusted_proxies == 0


def test_trusted_proxies_come_from_the_environment() -> None:
    assert load_settings({"TRUSTED_PROXIES": "2"}).trusted_proxies == 2


@pytest.mark.parametrize("raw", ["-1", "two"])
def test_a_bad_trusted_proxies_count_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": raw})


def test_job_intervals_are_read_per_job() -> None:
    settings = load_settings({"JOB_INTERVAL_OUTBOX_RELAY": "2s", "JOB_INTERVAL_SCHEDULER": "1m"})
    assert settings.job_interval_seconds == {"outbox_relay": 2.0, "scheduler": 60.0}
