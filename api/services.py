"""The web process's long-lived resources, built once per process by create_app()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis
from flask import Flask, current_app
from sqlalchemy import Engine
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


def services() -> Services:
    return cast(Services, current_app.extensions["iw"])


def settings() -> Settings:
    return services().settings
