"""The worker process's long-lived resources, built lazily once per process.

The composition root (workers.app) calls `configure(settings)`; the first task
that needs the database builds the engine in the process that runs it, so a
prefork child never shares a parent's sockets. `reset_after_fork()` drops
anything inherited across a fork (called from `worker_process_init`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.templating import TemplateRenderer
from models.base import Base
from models.config import Settings, load_settings
from models.db import UnitOfWork, make_db_engine, make_session_factory
from models.prepared import send_plain_sql
from tasks.dispatch import Publisher
from tasks.instrumentation import instrument_db_engine, instrumented_redis
from tasks.outbound import OutboundHttp
from tasks.ssrf import parse_networks


@dataclass
class Runtime:
    settings: Settings
    _db_engine: Engine | None = None
    _autocommit_engine: Engine | None = None
    _session_factory: sessionmaker[Session] | None = None
    _redis: redis.Redis | None = None
    _publisher: Publisher | None = field(default=None)
    _outbound: OutboundHttp | None = None
    _renderer: TemplateRenderer | None = None

    @property
    def db_engine(self) -> Engine:
        if self._db_engine is None:
            self._db_engine = self._make_db_engine()
        return self._db_engine

    @property
    def autocommit_engine(self) -> Engine:
        """Connections that stay in autocommit (the optimistic step path of
        tasks.steprun): switching a pooled connection in and out of autocommit would
        cost a round trip each way (models.db.make_db_engine)."""
        if self._autocommit_engine is None:
            self._autocommit_engine = self._make_db_engine(autocommit=True)
        return self._autocommit_engine

    def _make_db_engine(self, *, autocommit: bool = False) -> Engine:
        # Without the API's ping of suspect connections: a step costs two or four
        # round trips and the ping would add one. A dropped connection fails one
        # task, the disconnect invalidates the pool, and the step's ticket is relayed.
        db_engine = make_db_engine(
            self.settings.database_url,
            pool_size=self.settings.db_pool_size,
            application_name="iw-worker",
            autocommit=autocommit,
            ping_when_suspect=False,
        )
        instrument_db_engine(db_engine, frozenset(Base.metadata.tables))
        if not self.settings.db_prepared_statements:
            send_plain_sql(db_engine)
        return db_engine

    def dispose(self) -> None:
        for db_engine in (self._db_engine, self._autocommit_engine):
            if db_engine is not None:
                db_engine.dispose()

    @property
    def session_factory(self) -> sessionmaker[Session]:
        if self._session_factory is None:
            self._session_factory = make_session_factory(self.db_engine)
        return self._session_factory

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = instrumented_redis(self.settings.redis_url, socket_timeout=5)
        return self._redis

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = Publisher.for_current_app()
        return self._publisher

    @property
    def outbound(self) -> OutboundHttp:
        if self._outbound is None:
            self._outbound = OutboundHttp(
                parse_networks(self.settings.outbound_allow_cidrs),
                self.settings.outbound_max_response_bytes,
                self.settings.outbound_timeout_seconds,
            )
        return self._outbound

    @property
    def renderer(self) -> TemplateRenderer:
        """Holds the secrets: templates read them, traces never show them."""
        if self._renderer is None:
            self._renderer = TemplateRenderer(self.settings.workflow_secrets)
        return self._renderer

    def forget_connections(self) -> None:
        """Drop pooled connections inherited from a parent process (never close them:
        the parent still owns the sockets)."""
        for db_engine in (self._db_engine, self._autocommit_engine):
            if db_engine is not None:
                db_engine.dispose(close=False)
        self._db_engine = None
        self._autocommit_engine = None
        self._session_factory = None
        self._redis = None
        self._outbound = None


# The one runtime of this process (a dict, not a global statement: set by the
# composition root, read by task bodies).
_current: dict[str, Runtime] = {}


def configure(settings: Settings) -> Runtime:
    _current["runtime"] = Runtime(settings)
    return _current["runtime"]


def current() -> Runtime:
    """The configured runtime; built from the environment if nobody configured one."""
    if "runtime" not in _current:
        _current["runtime"] = Runtime(load_settings())
    return _current["runtime"]


def reset_after_fork() -> None:
    if "runtime" in _current:
        _current["runtime"].forget_connections()
