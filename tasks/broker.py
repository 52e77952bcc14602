"""The Redis broker transport of every process that publishes or consumes steps:
kombu's, with one Redis client per channel.

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

from typing import Any

from kombu.transport import redis as kombu_redis

TRANSPORT = "tasks.broker:Transport"


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


class Transport(kombu_redis.Transport):
    Channel = Channel
