"""The worker's broker channel: tasks.broker's, surviving a lost Redis connection.

When the worker's connection to Redis breaks, Celery's consumer first
`collect()`s the connection, which detaches the kombu transport from it
(`transport.client = None`) even when closing the channel failed half-way, and
then `close()`s it, which closes that channel again. The channel then re-queues
the messages it holds unacknowledged, and for that builds a new Redis pool from
`transport.client`: an `AttributeError`, which is not a connection error, so
the worker stops ("Unrecoverable error") instead of reconnecting. It happened
in about one Redis kill in three of tests/e2e/platform/test_outages.py, with
kombu's own Redis transport as with tasks.broker's. Here a detached transport
raises a connection error instead, which the consumer ignores before it
reconnects. The messages it could not re-queue were lost with the broker
anyway; their tickets are relayed from the outbox.

The guard belongs in tasks.broker.Channel (the one adapter of kombu's Redis
channel); until it moves there, `install()` puts this subclass in place for the
processes built by workers.app. The transport's name stays tasks.broker's, which
is what tasks.dispatch.Publisher checks to publish steps on its fast path.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions

from tasks import broker


class Channel(broker.Channel):
    def _get_pool(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._get_pool(asynchronous=asynchronous)


def install() -> None:
    """Make tasks.broker's transport open guarded channels in this process."""
    broker.Transport.Channel = Channel
