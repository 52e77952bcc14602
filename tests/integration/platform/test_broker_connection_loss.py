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
