"""Settings from the environment: parsed, defaulted, and refused when wrong."""

from __future__ import annotations

import pytest

from models.config import ConfigurationError, load_settings, normalize_database_url


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


@pytest.mark.parametrize(
    "written",
    [
        "postgresql://user:pw@db.example.com:5432/app?sslmode=require",
        "postgres://user:pw@db.example.com:5432/app?sslmode=require",
        "POSTGRES://user:pw@db.example.com:5432/app?sslmode=require",
        "postgresql+psycopg2://user:pw@db.example.com:5432/app?sslmode=require",
    ],
)
def test_a_plain_postgres_url_names_the_pinned_psycopg2_driver(written: str) -> None:
    expected = "postgresql+psycopg2://user:pw@db.example.com:5432/app?sslmode=require"
    assert normalize_database_url(written) == expected


def test_a_url_of_another_scheme_is_left_as_written() -> None:
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert normalize_database_url("not a url") == "not a url"


def test_settings_hold_the_normalised_database_url_from_any_source() -> None:
    expected = "postgresql+psycopg2://postgres@127.0.0.1:5432/somedb"
    from_environment = load_settings({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/somedb"})
    from_overrides = load_settings(
        {}, overrides={"database_url": "postgresql://postgres@127.0.0.1:5432/somedb"}
    )
    assert from_environment.database_url == expected
    assert from_overrides.database_url == expected


def test_the_alembic_configuration_gets_the_normalised_url() -> None:
    from models.migration import alembic_config, database_url_of

    config = alembic_config("postgres://postgres@127.0.0.1:5432/somedb")
    assert config.get_main_option("sqlalchemy.url") == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/somedb"
    )
    assert database_url_of("postgresql://postgres@h/somedb").drivername == "postgresql+psycopg2"


def test_a_short_audit_signing_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="AUDIT_SIGNING_KEY"):
        load_settings({"AUDIT_SIGNING_KEY": "too-short"})


def test_the_audit_signing_key_comes_from_the_environment() -> None:
    assert load_settings({"AUDIT_SIGNING_KEY": "s" * 32}).audit_signing_key == "s" * 32
    assert load_settings({}).audit_signing_key == ""
