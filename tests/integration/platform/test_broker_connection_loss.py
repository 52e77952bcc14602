"""A worker survives losing its broker connection (tasks.broker.Channel._get_pool).

Celery's consumer, on a lost connection, `collect()`s it (which detaches the
transport) and then `close()`s it, closing the channel again; re-queueing the
channel's unacknowledged messages then needs the detached transport.
"""

from __future__ import annotations

from typing import Any

import pytest
from kombu import Connection
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from tasks import broker

pytestmark = pytest.mark.integration


def _closed_as_celery_does(transport: type[kombu_redis.Transport], redis_url: str) -> Any:
    connection = Connection(redis_url, transport=transport)
    channel = connection.default_channel
    channel.qos._delivered["a-delivery-tag"] = None  # a message held unacknowledged
    # What Connection.collect() leaves when closing the channel raised a connection
    # error: the transport detached, the channel still open.
    connection._do_close_transport()
    return ignore_errors(connection, connection.close)


def test_kombu_needs_the_detached_transport_to_requeue_unacknowledged_messages(
    redis_url: str,
) -> None:
    # The behaviour the guard is for; when an upgrade of kombu fixes it, the guard can go.
    with pytest.raises(AttributeError):
        _closed_as_celery_does(kombu_redis.Transport, redis_url)


def test_the_channel_turns_it_into_a_connection_error_the_consumer_ignores(
    redis_url: str,
) -> None:
    assert _closed_as_celery_does(broker.Transport, redis_url) is None


def _refused_url() -> str:
    """A Redis URL on a port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_a_publish_to_a_broker_that_refuses_gives_up_at_once() -> None:
    """Not after kombu's default connection retries (about 6 s): the ticket is the
    relay's, and the request or step that published goes on (tasks.broker.FAIL_FAST)."""
    import time
    import uuid

    from tasks.dispatch import Publisher, Ticket

    publisher = Publisher.for_broker(_refused_url(), celery_metrics=False)
    tickets = [Ticket(outbox_id=n, execution_id=uuid.uuid4(), step_id="a") for n in (1, 2)]
    started = time.monotonic()
    assert publisher.publish(tickets[:1]) == 0
    assert publisher.publish(tickets) == 0
    assert time.monotonic() - started < 2.0


def test_kombu_retries_a_refused_connection_for_its_timeout_without_the_options() -> None:
    """The default FAIL_FAST overrides; when kombu stops retrying by default, it can go."""
    import time

    from kombu.exceptions import OperationalError

    connection = Connection(_refused_url(), transport=broker.Transport, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        _ = connection.default_channel
    assert time.monotonic() - started >= 0.9
    connection.release()
