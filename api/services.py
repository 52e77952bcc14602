"""The web process's long-lived resources, built once per process by create_app()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis
from flask import Flask, Response, current_app, g
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from models.config import Settings
from models.db import UnitOfWork


@dataclass
class Services:
    settings: Settings
    db_engine: Engine
    # Its own pool of connections that stay in autocommit (models.db.make_db_engine):
    # for the single-statement reads done at every request.
    autocommit_engine: Engine
    session_factory: sessionmaker[Session]
    redis: redis.Redis

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def dispose(self) -> None:
        self.db_engine.dispose()
        self.autocommit_engine.dispose()


def install(app: Flask, services: Services) -> None:
    app.extensions["iw"] = services
    # Returned once the answer is ready, before a streamed body (SSE) starts, and on
    # teardown for a request that ended in an error.
    app.after_request(_return_before_the_body)
    app.teardown_appcontext(_return_autocommit_connection)


def services() -> Services:
    return cast(Services, current_app.extensions["iw"])


def settings() -> Settings:
    return services().settings


def autocommit_connection() -> Connection:
    """This request's connection from the autocommit pool, checked out at its first
    use and returned when the request ends: an event's caller check, routing and
    writes share one checkout instead of taking three."""
    connection: Connection | None = g.get("iw_autocommit_connection")
    if connection is None or connection.closed:
        connection = services().autocommit_engine.connect()
        g.iw_autocommit_connection = connection
    return connection


def _return_before_the_body(response: Response) -> Response:
    _return_autocommit_connection(None)
    return response


def _return_autocommit_connection(_error: BaseException | None) -> None:
    connection: Connection | None = g.pop("iw_autocommit_connection", None)
    if connection is not None:
        connection.close()
