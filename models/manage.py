"""Database management for `make up`: create the database, migrate, seed roles.

python -m models.manage init
"""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy import create_engine

from models.config import normalize_database_url
from models.migration import create_database_if_missing, upgrade_to_head
from models.seed import seed_roles

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/intelligent_workflows"


def init(database_url: str) -> None:
    database_url = normalize_database_url(database_url)
    if create_database_if_missing(database_url):
        print(f"created database {database_url.rsplit('/', 1)[-1]}")
    upgrade_to_head(database_url)
    db_engine = create_engine(database_url)
    try:
        with db_engine.begin() as connection:
            seed_roles(connection)
    finally:
        db_engine.dispose()
    print("database ready: migrations at head, roles seeded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.manage")
    parser.add_argument("command", choices=["init"])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args(argv)
    if args.command == "init":
        init(args.database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
