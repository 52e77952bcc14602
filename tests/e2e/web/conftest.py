"""Fixtures of the web console's end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def web_database_url(database_url: str) -> Iterator[str]:
    """This suite's processes get a database of their own (see tests.conftest)."""
    from tests.conftest import dedicated_database

    with dedicated_database(database_url, "web") as url:
        yield url
