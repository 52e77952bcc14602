"""The step path's plumbing against real Redis and Postgres: the broker transport that
reuses one Redis client per channel, and the prepared statements of the step path."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection
from sqlalchemy.exc import DBAPIError

from models.prepared import PreparedStatement, execute_prepared
from tasks.broker import Transport

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
        plain.dispose()


def prepared_count(connection: Any) -> int:
    query = "SELECT count(*) FROM pg_prepared_statements WHERE name = 'iw_test_answer'"
    return int(connection.exec_driver_sql(query).scalar())


def test_a_statement_registered_after_a_connection_prepared_is_prepared_on_first_use(
    rt: Any,
) -> None:
    with rt.db_engine.connect() as connection:
        execute_prepared(connection, [_ANSWER], {"value": 1})
        # As when a module defining statements is imported after the connection's first use.
        # (It stays registered: a valid statement, prepared on later connections too.)
        late = PreparedStatement("iw_test_late", "SELECT %(value)s::integer * 2")
        execute_prepared(connection, [_ANSWER], {"value": 1})  # prepares nothing new
        assert execute_prepared(connection, [late], {"value": 21}).scalar() == 42
        connection.rollback()


# --- tasks.broker.ChannelSender: step messages straight onto a kombu channel ----------
_SENDER_QUEUE = "iw-test-sender"


def _sender(redis_url: str) -> Any:
    from tasks.broker import ChannelSender
    from tasks.dispatch import publisher_config

    app = Celery("iw-test-sender", set_as_current=False)
    app.conf.update(publisher_config(redis_url))
    return ChannelSender(app)


def _send(sender: Any, n: int) -> None:
    sender.send(
        "workflows.run_step",
        _SENDER_QUEUE,
        {"n": n},
        argsrepr="()",
        kwargsrepr=f"n={n}",
        soft_time_limit=35.0,
        time_limit=45.0,
    )


def _without(values: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in keys}


def _received(redis_url: str, count: int) -> list[Any]:
    """Consume `count` messages from the test queue the way a worker's kombu does."""
    with Connection(redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(_SENDER_QUEUE)
        try:
            messages = []
            for _ in range(count):
                message = queue.get(timeout=5)
                message.ack()
                messages.append(message)
            return messages
        finally:
            queue.close()


def test_a_sent_message_is_a_celery_task_message_on_the_named_queue(redis_url: str) -> None:
    from prometheus_client import REGISTRY

    from tasks.dispatch import connect_publish_metrics

    connect_publish_metrics()
    labels = {"name": "workflows.run_step", "hostname": socket.gethostname()}
    labels["queue_name"] = _SENDER_QUEUE
    before = REGISTRY.get_sample_value("celery_task_sent_total", labels) or 0.0

    _send(_sender(redis_url), 7)

    [message] = _received(redis_url, 1)
    assert message.headers["task"] == "workflows.run_step"
    assert message.headers["kwargsrepr"] == "n=7"
    assert message.headers["timelimit"] == [45.0, 35.0]
    args, kwargs, _embed = message.decode()
    assert (args, kwargs) == ([], {"n": 7})
    assert REGISTRY.get_sample_value("celery_task_sent_total", labels) == before + 1


def test_a_sent_message_is_the_message_celerys_send_task_builds(redis_url: str) -> None:
    """tasks.broker builds messages with Celery's own parts but not through send_task: this
    fails when an upgrade of Celery or kombu makes the two differ."""
    sender = _sender(redis_url)
    _send(sender, 3)
    sender._app.send_task(
        "workflows.run_step",
        kwargs={"n": 3},
        queue=_SENDER_QUEUE,
        argsrepr="()",
        kwargsrepr="n=3",
        soft_time_limit=35.0,
        time_limit=45.0,
    )
    ours, celerys = _received(redis_url, 2)
    varying = {"id", "root_id", "correlation_id", "delivery_tag", "delivery_info", "origin"}
    # What the worker reads: every header, as send_task writes it.
    assert _without(ours.headers, varying) == _without(celerys.headers, varying)
    # send_task also copies its options into the properties (argsrepr, kwargsrepr, the
    # delivery mode, unused on Redis) and names its app as reply_to (for results, which
    # steps have none); the rest must agree.
    skipped = {*varying, "reply_to"}
    mine, theirs = _without(ours.properties, skipped), _without(celerys.properties, skipped)
    assert mine.keys() <= theirs.keys()
    assert mine == {key: theirs[key] for key in mine}
    assert ours.decode() == celerys.decode()
    assert (ours.content_type, ours.content_encoding) == (
        celerys.content_type,
        celerys.content_encoding,
    )


def test_a_sender_survives_its_connection_being_killed(redis_url: str) -> None:
    sender = _sender(redis_url)
    _send(sender, 1)
    # The connection the sender publishes on (its channel's pool holds one, idle).
    connection_id = sender._channel().client.client_id()
    admin = redis.Redis.from_url(redis_url)
    assert admin.client_kill_filter(_id=connection_id) == 1
    admin.close()

    _send(sender, 2)

    assert [m.decode()[1]["n"] for m in _received(redis_url, 2)] == [1, 2]


def test_a_forked_process_publishes_on_its_own_connection(redis_url: str) -> None:
    sender = _sender(redis_url)
    _send(sender, 1)  # the parent's connection exists before the fork
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's outcome is its exit code
        code = 1
        try:
            _send(sender, 2)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 0
    _send(sender, 3)  # and the parent's connection still works

    assert sorted(m.decode()[1]["n"] for m in _received(redis_url, 3)) == [1, 2, 3]


def _send_many(sender: Any, numbers: list[int]) -> None:
    sender.send_many(
        "workflows.run_step",
        _SENDER_QUEUE,
        [
            (
                {"n": n},
                {
                    "argsrepr": "()",
                    "kwargsrepr": f"n={n}",
                    "soft_time_limit": 35.0,
                    "time_limit": 45.0,
                },
            )
            for n in numbers
        ],
    )


def test_messages_sent_together_are_the_messages_sent_one_by_one(redis_url: str) -> None:
    from prometheus_client import REGISTRY

    from tasks.dispatch import connect_publish_metrics

    connect_publish_metrics()
    labels = {"name": "workflows.run_step", "hostname": socket.gethostname()}
    labels["queue_name"] = _SENDER_QUEUE
    before = REGISTRY.get_sample_value("celery_task_sent_total", labels) or 0.0
    sender = _sender(redis_url)
    _send(sender, 0)
    _send_many(sender, [1, 2, 3])

    single, *together = _received(redis_url, 4)

    assert sorted(m.decode()[1]["n"] for m in together) == [1, 2, 3]
    varying = {"id", "root_id", "correlation_id", "delivery_tag", "delivery_info", "kwargsrepr"}
    for message in together:
        assert _without(message.headers, varying) == _without(single.headers, varying)
        assert _without(message.properties, varying) == _without(single.properties, varying)
        assert message.headers["kwargsrepr"] == f"n={message.decode()[1]['n']}"
    assert REGISTRY.get_sample_value("celery_task_sent_total", labels) == before + 4


def test_messages_sent_together_survive_the_connection_being_killed(redis_url: str) -> None:
    sender = _sender(redis_url)
    _send_many(sender, [1, 2])
    connection_id = sender._channel().client.client_id()
    admin = redis.Redis.from_url(redis_url)
    assert admin.client_kill_filter(_id=connection_id) == 1
    admin.close()

    _send_many(sender, [3, 4])

    assert sorted(m.decode()[1]["n"] for m in _received(redis_url, 4)) == [1, 2, 3, 4]
