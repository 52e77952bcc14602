"""A worker survives losing its broker connection (workers.consumer_transport).

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
from workers import consumer_transport

pytestmark = pytest.mark.integration


class StockTransport(broker.Transport):
    Channel = broker.Channel


class GuardedTransport(broker.Transport):
    Channel = consumer_transport.Channel


def _closed_as_celery_does(transport: type[broker.Transport], redis_url: str) -> Any:
    connection = Connection(redis_url, transport=transport)
    channel = connection.default_channel
    channel.qos._delivered["a-delivery-tag"] = None  # a message held unacknowledged
    # What Connection.collect() leaves when closing the channel raised a connection
    # error: the transport detached, the channel still open.
    connection._do_close_transport()
    return ignore_errors(connection, connection.close)


@pytest.mark.parametrize("transport", [kombu_redis.Transport, StockTransport])
def test_kombu_needs_the_detached_transport_to_requeue_unacknowledged_messages(
    transport: type[broker.Transport], redis_url: str
) -> None:
    # The behaviour the guard is for, kombu's own transport included; when an
    # upgrade fixes it, the guard can go.
    with pytest.raises(AttributeError):
        _closed_as_celery_does(transport, redis_url)


def test_the_workers_channel_turns_it_into_a_connection_error_the_consumer_ignores(
    redis_url: str,
) -> None:
    assert _closed_as_celery_does(GuardedTransport, redis_url) is None


def test_install_keeps_the_transport_name_the_publisher_checks(monkeypatch: Any) -> None:
    from models.config import load_settings
    from workers.app import celery_config

    monkeypatch.setattr(broker.Transport, "Channel", broker.Transport.Channel)
    consumer_transport.install()
    assert broker.Transport.Channel is consumer_transport.Channel
    assert celery_config(load_settings({}))["broker_transport"] == broker.TRANSPORT
