"""The Redis broker transport of every process that publishes or consumes steps:
kombu's, with one Redis client per channel and a channel that survives a lost
connection; and ChannelSender, the publish path of step messages on it.

kombu's Redis channel builds a new `redis.Redis` client object for every
command it sends outside its event loop: every publish and, in the worker's
main process, the `unacked` bookkeeping of every message it receives and
acknowledges (acks_late). That is three client objects per workflow step, and
building one (redis-py copies its table of ~170 response callbacks) costs
about 70 µs of CPU, more than sending the command (bench/step_profile.py).
All those clients share the channel's connection pool, and a client object
holds no connection of its own (each command borrows one from the pool), so
one client per channel and pool behaves the same.

Selected by tasks.dispatch.publisher_config (the worker, beat and the API's
publisher) for `redis://` broker URLs only; other schemes (TLS, Sentinel) keep
kombu's own transport.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypedDict

import redis.exceptions
import structlog
from celery import Celery
from celery.signals import after_task_publish
from kombu.serialization import dumps
from kombu.transport import redis as kombu_redis
from kombu.utils.uuid import uuid

log = structlog.get_logger(__name__)

TRANSPORT = "tasks.broker:Transport"
# Redis commands buffered before a publish batch sends them (one LPUSH a message).
_PIPELINE_MAX = 1000
# kombu's connection failover options (Connection.default_channel) for publishing:
# a publish follows a commit and its ticket is relayed if it is lost, so a broker
# that refuses connections fails it at once, not after kombu's default retries for
# its connect timeout (about 6 s holding an event's request or a step's process).
FAIL_FAST = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}


class Options(TypedDict):
    """What `ChannelSender.send` takes besides the message: Flower's reprs, time limits."""

    argsrepr: str
    kwargsrepr: str
    soft_time_limit: float
    time_limit: float


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the event loop's client: kombu already keeps one
            return super()._create_client(asynchronous=True)
        pool = self.pool  # a new pool after a fork or a disconnect: a new client
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()
        return client

    def _get_pool(self, asynchronous: bool = False) -> Any:
        # When the worker loses Redis, Celery's consumer detaches the transport from
        # the connection, then closes the channel again, which re-queues its unacked
        # messages through a new pool built from the detached transport: an
        # AttributeError, which stops the worker ("Unrecoverable error"). As a
        # connection error the consumer ignores it and reconnects; those messages
        # were lost with the broker anyway and their tickets are relayed.
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._get_pool(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


class ChannelSender:
    """Publishes task messages onto one kombu channel per process and thread.

    `Celery.send_task` routes, resolves the queue and its exchange, declares
    them, and takes a producer from the pool around every message: about
    400 µs of CPU per publish, paid by every workflow step and every event
    (bench/ingest_profile.py, bench/step_profile.py). This builds the same
    message with Celery's own `amqp.as_task_v2` and kombu's channel
    (`prepare_message`, `basic_publish` to the queue by name, as Celery's
    default routing of a queue does on Redis), for about 160 µs, and sends
    `after_task_publish` as send_task does (the celery_task_sent_total metric).

    A fork (gunicorn, Celery's prefork pool) or another thread gets its own
    connection; a failed publish drops the connection, retries once on a new
    one, then raises (the outbox relay publishes what is lost).
    """

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._local = threading.local()

    def send(
        self,
        name: str,
        queue: str,
        kwargs: dict[str, Any],
        *,
        argsrepr: str,
        kwargsrepr: str,
        soft_time_limit: float,
        time_limit: float,
    ) -> None:
        message = self._message(
            name,
            kwargs,
            self._links(),
            argsrepr=argsrepr,
            kwargsrepr=kwargsrepr,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )
        serialized = self._serialized(message)

        def publish(channel: Any) -> None:
            prepared = _prepared(channel, message, serialized)
            channel.basic_publish(prepared, exchange="", routing_key=queue)

        self._on_a_channel(publish)
        _sent(name, queue, message)

    def send_many(
        self, name: str, queue: str, messages: list[tuple[dict[str, Any], Options]]
    ) -> None:
        """Publish several messages of one task in one pipelined round trip (kombu's
        publish batch: the same LPUSHes as `send`, sent together). A failure drops the
        connection and retries the whole batch once on a new one, then raises: a
        message sent twice is harmless (its ticket is consumed once), a lost one is
        relayed."""
        # The parent task is the same for all (looked up once: a stack walk each time).
        links = self._links()
        built = [self._message(name, kwargs, links, **options) for kwargs, options in messages]
        serialized = [self._serialized(message) for message in built]

        def publish(channel: Any) -> None:
            batch = channel.create_publish_batch(max_size=_PIPELINE_MAX)
            try:
                for message, body in zip(built, serialized, strict=True):
                    batch.publish(_prepared(channel, message, body), exchange="", routing_key=queue)
                batch.flush()
            finally:
                batch.close()

        self._on_a_channel(publish)
        for message in built:
            _sent(name, queue, message)

    def _on_a_channel(self, publish: Callable[[Any], None]) -> None:
        """Publish on this process's channel; on a failure, drop the connection and try
        once more on a new one, then raise (the relay publishes what is lost)."""
        for attempt in (1, 2):
            try:
                publish(self._channel())
                return
            except Exception:
                self._drop()
                if attempt == 2:
                    raise

    def _serialized(self, message: Any) -> tuple[str, str, Any]:
        """(content type, encoding, body) of a message, as send_task serializes it."""
        return dumps(message.body, serializer=self._app.conf.task_serializer)

    def _links(self) -> tuple[str | None, str | None]:
        """(parent id, root id): inside a task, keep Celery's parent/root links."""
        parent = self._app.current_worker_task
        parent_id = parent.request.id if parent else None
        root_id = (parent.request.root_id or parent_id) if parent else None
        return parent_id, root_id

    def _message(
        self,
        name: str,
        kwargs: dict[str, Any],
        links: tuple[str | None, str | None],
        *,
        argsrepr: str,
        kwargsrepr: str,
        soft_time_limit: float,
        time_limit: float,
    ) -> Any:
        parent_id, root_id = links
        return self._app.amqp.as_task_v2(
            uuid(),
            name,
            kwargs=kwargs,
            argsrepr=argsrepr,
            kwargsrepr=kwargsrepr,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
            root_id=root_id,
            parent_id=parent_id,
            ignore_result=None,  # as send_task: the task's own option decides
        )

    def _channel(self) -> Any:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or local.connection is None:
            local.connection = self._app.connection_for_write(transport_options=FAIL_FAST)
            local.channel = local.connection.default_channel
            local.pid = os.getpid()
        return local.channel

    def _drop(self) -> None:
        connection, self._local.connection = getattr(self._local, "connection", None), None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # already broken: nothing more to release
                log.debug("broker_connection_close_failed", error=repr(exc))


def _prepared(channel: Any, message: Any, serialized: tuple[str, str, Any]) -> Any:
    content_type, encoding, body = serialized
    return channel.prepare_message(
        body, None, content_type, encoding, dict(message.headers), dict(message.properties)
    )


def _sent(name: str, queue: str, message: Any) -> None:
    """after_task_publish, as send_task sends it (the celery_task_sent_total metric)."""
    after_task_publish.send(
        sender=name,
        body=message.body,
        exchange="",
        routing_key=queue,
        headers=message.headers,
        properties=message.properties,
        declare=[],
        retry_policy=None,
    )
