"""The committed changes of executions, fanned out to the streams of one process.

A trigger on `executions` (migration 0007_i17) sends a NOTIFY on channel
`iw_executions` for every change of an execution's version, status or current
step; Postgres delivers it only once the transaction commits, so what a stream
shows is committed. One LISTEN connection per process, on a thread of its own,
hands each change to the subscriptions of its organization; a subscription
never sees another organization's changes.

When the LISTEN connection drops, changes committed meanwhile are not
delivered: once it listens again, every subscription is told (LOST) and
re-reads from Postgres, as a client resuming with Last-Event-ID does.
"""

from __future__ import annotations

import json
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import psycopg2
import psycopg2.extensions
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)

CHANNEL: Final = "iw_executions"  # the migration's trigger sends on this channel
READY_TIMEOUT_SECONDS = 5.0
_POLL_SECONDS = 5.0
_RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Change:
    """One committed change, as the trigger sent it."""

    execution_id: str
    organization_id: str
    workflow_id: str
    version: int
    status: str
    current_step_id: str | None
    at: str  # the row's updated_at (ISO 8601)

    @classmethod
    def parse(cls, payload: str) -> Change:
        data = json.loads(payload)
        return cls(
            execution_id=str(data["id"]),
            organization_id=str(data["org"]),
            workflow_id=str(data["workflow_id"]),
            version=int(data["version"]),
            status=str(data["status"]),
            current_step_id=data.get("step"),
            at=str(data["at"]),
        )


class Lost:
    """Sent to every subscription when the feed may have missed changes."""


LOST: Final = Lost()
Item = Change | Lost


class FeedUnavailable(RuntimeError):
    """The LISTEN connection is not up (the database is unreachable)."""


class Subscription:
    def __init__(self, organization_id: str, accepts: Callable[[Change], bool]) -> None:
        self.organization_id = organization_id
        self.accepts = accepts
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()


class ExecutionFeed:
    """Started by its first subscription; one per process (see feed_of)."""

    def __init__(self, database_url: str) -> None:
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._lock = threading.Lock()
        self._by_organization: dict[str, set[Subscription]] = {}
        self._listening = threading.Event()
        self._stopping = threading.Event()
        # Written by stop() to wake the listening thread out of its select().
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread: threading.Thread | None = None

    def subscribe(self, organization_id: str, accepts: Callable[[Change], bool]) -> Subscription:
        """Registered before the caller reads its starting state, so nothing committed
        after that read is missed; returns once the feed is listening."""
        self._start()
        subscription = Subscription(organization_id, accepts)
        with self._lock:
            self._by_organization.setdefault(organization_id, set()).add(subscription)
        if not self._listening.wait(READY_TIMEOUT_SECONDS):
            self.unsubscribe(subscription)
            raise FeedUnavailable("the database's change feed is not listening")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            members = self._by_organization.get(subscription.organization_id)
            if members is not None:
                members.discard(subscription)
                if not members:
                    del self._by_organization[subscription.organization_id]

    def subscribers(self) -> int:
        with self._lock:
            return sum(len(members) for members in self._by_organization.values())

    def stop(self) -> None:
        self._stopping.set()
        self._wake_writer.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=_POLL_SECONDS + 1)
        self._wake_reader.close()
        self._wake_writer.close()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="iw-execution-feed", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._listen(reconnected=failures > 0)
                failures = 0
            except (psycopg2.Error, OSError) as exc:
                self._listening.clear()
                delay = _RECONNECT_SECONDS[min(failures, len(_RECONNECT_SECONDS) - 1)]
                failures += 1
                log.warning("execution_feed_disconnected", error=str(exc), retry_in=delay)
                time.sleep(delay)

    def _listen(self, reconnected: bool) -> None:
        connection = psycopg2.connect(self._dsn, application_name="iw-stream-feed")
        try:
            connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self._listening.set()
            if reconnected:
                # Listening again: what was committed while we were not is read from
                # Postgres by every stream, after this point, so nothing falls between.
                self._broadcast_lost()
            while not self._stopping.is_set():
                readable, _, _ = select.select(
                    [connection, self._wake_reader], [], [], _POLL_SECONDS
                )
                if self._stopping.is_set():
                    return
                if not readable:
                    # Idle: a round trip notices a dead server before a change is missed.
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")
                connection.poll()
                while connection.notifies:
                    self._dispatch(connection.notifies.pop(0).payload)
        finally:
            self._listening.clear()
            connection.close()

    def _dispatch(self, payload: str) -> None:
        try:
            change = Change.parse(payload)
        except (ValueError, KeyError, TypeError) as exc:
            # Whose change it was is unknown: every stream re-reads rather than miss it.
            log.error("execution_feed_bad_payload", payload=payload[:200], error=str(exc))
            self._broadcast_lost()
            return
        with self._lock:
            members = list(self._by_organization.get(change.organization_id, ()))
        for subscription in members:
            if subscription.accepts(change):
                subscription.queue.put(change)

    def _broadcast_lost(self) -> None:
        with self._lock:
            members = [s for group in self._by_organization.values() for s in group]
        for subscription in members:
            subscription.queue.put(LOST)


_FEEDS: dict[str, ExecutionFeed] = {}
_FEEDS_LOCK = threading.Lock()


def feed_of(database_url: str) -> ExecutionFeed:
    """This process's feed of that database (built at first use, after any fork)."""
    with _FEEDS_LOCK:
        feed = _FEEDS.get(database_url)
        if feed is None:
            feed = _FEEDS[database_url] = ExecutionFeed(database_url)
        return feed


def stop_feeds() -> None:
    with _FEEDS_LOCK:
        feeds = list(_FEEDS.values())
        _FEEDS.clear()
    for feed in feeds:
        feed.stop()
