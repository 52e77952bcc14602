"""models.driver.run_driver_sql: the driver's cursor under SQLAlchemy's contract
(its exceptions, its transactions, a lost connection invalidated, statements observed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from models import driver
from models.db import make_db_engine
from models.driver import run_driver_sql


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    db_engine = create_engine(database_url)
    with db_engine.begin() as connection:
        connection.execute(text("CREATE TABLE test_driver_rows (id int PRIMARY KEY, note text)"))
    yield db_engine
    with db_engine.begin() as connection:
        connection.execute(text("DROP TABLE test_driver_rows"))
    db_engine.dispose()


@pytest.fixture
def observed(engine: Engine) -> Iterator[list[tuple[str, float, BaseException | None]]]:
    seen: list[tuple[str, float, BaseException | None]] = []

    def observer(statement: str, seconds: float, error: BaseException | None) -> None:
        seen.append((statement, seconds, error))

    driver.observe(engine, observer)
    yield seen
    driver.stop_observing(engine, observer)


def count_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM test_driver_rows")).scalar_one())


def test_rows_come_back_as_the_driver_gives_them(engine: Engine) -> None:
    with engine.connect() as connection:
        run_driver_sql(
            connection,
            "INSERT INTO test_driver_rows VALUES (%(a)s, 'a'), (%(b)s, 'b')",
            {"a": 1, "b": 2},
        )
        rows = run_driver_sql(connection, "SELECT id, note FROM test_driver_rows ORDER BY id", {})
        nothing = run_driver_sql(connection, "SELECT id FROM test_driver_rows WHERE id < 0", {})
        updated = run_driver_sql(connection, "UPDATE test_driver_rows SET note = 'c'", {})
        connection.commit()
    assert rows.all() == [(1, "a"), (2, "b")]
    assert rows.first() == (1, "a")
    assert list(rows) == [(1, "a"), (2, "b")]
    assert nothing.first() is None
    assert (updated.first(), updated.rowcount) == (None, 2)


def test_outside_autocommit_the_statement_is_in_the_callers_transaction(engine: Engine) -> None:
    with engine.connect() as connection:
        run_driver_sql(connection, "INSERT INTO test_driver_rows VALUES (1, 'kept')", {})
        assert connection.in_transaction()
        connection.commit()
        run_driver_sql(connection, "INSERT INTO test_driver_rows VALUES (2, 'undone')", {})
        connection.rollback()
    assert count_rows(engine) == 1


def test_a_driver_error_is_sqlalchemys_and_the_observers_see_it(
    engine: Engine, observed: list[tuple[str, float, BaseException | None]]
) -> None:
    insert = "INSERT INTO test_driver_rows VALUES (%(id)s, 'x')"
    with engine.connect() as connection:
        run_driver_sql(connection, insert, {"id": 7})
        with pytest.raises(IntegrityError) as raised:
            run_driver_sql(connection, insert, {"id": 7})
        connection.rollback()
    assert raised.value.statement == insert
    assert raised.value.params == {"id": 7}
    assert type(raised.value.orig).__name__ == "UniqueViolation"
    (first, ok_seconds, no_error), (second, _, error) = observed
    assert (first, second) == (insert, insert)
    assert no_error is None and ok_seconds > 0
    assert error is raised.value  # SQLAlchemy's, as raised; `.orig` is the driver's


def test_a_lost_connection_is_invalidated_with_its_pool(database_url: str) -> None:
    db_engine = make_db_engine(database_url, pool_size=2, autocommit=True, ping_when_suspect=False)
    outsider = create_engine(database_url, poolclass=NullPool)
    try:
        with db_engine.connect() as first, db_engine.connect() as second:
            pids = [
                run_driver_sql(connection, "SELECT pg_backend_pid()", {}).all()[0][0]
                for connection in (first, second)
            ]
        # Both now idle in the pool; the server ends them, as a restart would.
        with outsider.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM unnest(:pids) AS pid"),
                {"pids": pids},
            )
        with db_engine.connect() as connection:
            with pytest.raises(OperationalError) as raised:
                run_driver_sql(connection, "SELECT 1", {})
            assert raised.value.connection_invalidated
            assert connection.invalidated
        # The other pooled connection was lost too: the pool was dropped with the
        # first, so the next use gets a new connection instead of a second failure.
        with db_engine.connect() as connection:
            assert run_driver_sql(connection, "SELECT pg_backend_pid()", {}).all()[0][0] not in pids
    finally:
        db_engine.dispose()
        outsider.dispose()


def test_driver_statements_feed_the_database_metrics(database_url: str) -> None:
    from prometheus_client import REGISTRY

    from tasks.instrumentation import instrument_db_engine

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    db_engine = make_db_engine(database_url, pool_size=1, autocommit=True, ping_when_suspect=False)
    instrument_db_engine(db_engine)
    outsider = create_engine(database_url, poolclass=NullPool)
    queries = sample("db_query_duration_seconds_count", query_type="select", table="executions")
    errors = sample("db_query_errors_total", query_type="select", error_type="DivisionByZero")
    lost = sample("db_connections_failed_total", database="postgres")
    try:
        with db_engine.connect() as connection:
            run_driver_sql(connection, "SELECT 1 FROM executions LIMIT 1", {})
            with pytest.raises(DBAPIError):
                run_driver_sql(connection, "SELECT 1 / 0 FROM executions", {})
            [(pid,)] = run_driver_sql(connection, "SELECT pg_backend_pid()", {}).all()
            with outsider.connect() as killer:
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(OperationalError):
                run_driver_sql(connection, "SELECT 1", {})
    finally:
        db_engine.dispose()
        outsider.dispose()
    assert sample("db_query_duration_seconds_count", query_type="select", table="executions") == (
        queries + 1
    )
    # Labelled with the driver's error class, as for statements SQLAlchemy runs.
    assert sample("db_query_errors_total", query_type="select", error_type="DivisionByZero") == (
        errors + 1
    )
    assert sample("db_connections_failed_total", database="postgres") == lost + 1


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("INSERT INTO test_driver_rows VALUES (%(id)s, 'x')", {"id": 1}),  # unique violation
        ("SELECT %(n)s::int / 0", {"n": 1}),  # data error
        ("SELECT * FROM no_such_table_here", {}),  # programming error
        ("SELECT %(t)s::timestamptz", {"t": "not a time"}),  # invalid input
    ],
)
def test_driver_errors_are_the_ones_sqlalchemy_raises_for_the_same_statement(
    engine: Engine, sql: str, params: dict[str, object]
) -> None:
    """models.driver re-does SQLAlchemy's error translation: this fails when an upgrade
    of SQLAlchemy makes exec_driver_sql raise something else."""
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO test_driver_rows VALUES (1, 'x')"))
        connection.commit()
        with pytest.raises(DBAPIError) as ours:
            run_driver_sql(connection, sql, params)
        connection.rollback()
        with pytest.raises(DBAPIError) as theirs:
            connection.exec_driver_sql(sql, params)
        connection.rollback()
    assert type(ours.value) is type(theirs.value)
    assert type(ours.value.orig) is type(theirs.value.orig)
    assert ours.value.connection_invalidated == theirs.value.connection_invalidated
    assert (ours.value.statement, ours.value.params) == (
        theirs.value.statement,
        theirs.value.params,
    )
