"""The step path's plumbing against real Redis and Postgres: the broker transport that
reuses one Redis client per channel, and the prepared statements of the step path."""

from __future__ import annotations

from typing import Any

import pytest
from kombu import Connection
from sqlalchemy.exc import DBAPIError

from tasks.broker import Transport
from tasks.prepared import PreparedStatement, execute_prepared

_ANSWER = PreparedStatement("iw_test_answer", "SELECT %(value)s::integer + 1")


def test_a_broker_channel_reuses_one_client_until_its_pool_changes(redis_url: str) -> None:
    with Connection(redis_url, transport=Transport) as connection:
        channel = connection.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        channel._disconnect_pools()  # what kombu does after a fork
        assert channel._create_client() is not first


def test_messages_go_through_the_client_reusing_transport(redis_url: str) -> None:
    with Connection(redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue("iw-test-broker-transport")
        try:
            for n in range(3):
                queue.put({"n": n})
            received = []
            for _ in range(3):
                message = queue.get(timeout=5)
                received.append(message.payload["n"])
                message.ack()
            assert received == [0, 1, 2]
        finally:
            queue.clear()
            queue.close()


def test_a_statement_runs_prepared_on_its_connection(rt: Any) -> None:
    with rt.db_engine.connect() as connection:
        assert execute_prepared(connection, [_ANSWER], {"value": 1}).scalar() == 2
        assert execute_prepared(connection, [_ANSWER], {"value": 41}).scalar() == 42
        assert prepared_count(connection) == 1
        connection.rollback()


def test_a_connection_that_lost_its_statements_prepares_them_again(rt: Any) -> None:
    with rt.db_engine.connect() as connection:
        execute_prepared(connection, [_ANSWER], {"value": 1})
        connection.exec_driver_sql("DEALLOCATE ALL")  # as if the session had been reset
        connection.commit()
        with pytest.raises(DBAPIError):
            execute_prepared(connection, [_ANSWER], {"value": 1})
        connection.rollback()
        assert execute_prepared(connection, [_ANSWER], {"value": 2}).scalar() == 3
        connection.rollback()


def test_prepared_statements_outlive_the_rollback_of_their_transaction(rt: Any) -> None:
    with rt.db_engine.connect() as connection:
        execute_prepared(connection, [_ANSWER], {"value": 1})
        connection.rollback()
        assert prepared_count(connection) == 1
        assert execute_prepared(connection, [_ANSWER], {"value": 5}).scalar() == 6
        connection.rollback()


def test_with_prepared_statements_off_the_same_statements_run_plain(
    engine_settings: dict[str, Any],
) -> None:
    from models.config import load_settings
    from tasks.runtime import Runtime

    settings = load_settings(
        environ={}, overrides={**engine_settings, "db_prepared_statements": False}
    )
    plain = Runtime(settings)
    try:
        with plain.db_engine.connect() as connection:
            assert execute_prepared(connection, [_ANSWER], {"value": 41}).scalar() == 42
            assert prepared_count(connection) == 0
            connection.rollback()
    finally:
        plain.db_engine.dispose()


def prepared_count(connection: Any) -> int:
    query = "SELECT count(*) FROM pg_prepared_statements WHERE name = 'iw_test_answer'"
    return int(connection.exec_driver_sql(query).scalar())
