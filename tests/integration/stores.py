"""Which store the integration tests' nodes use: SQLite, or PostgreSQL when
BAL_TEST_STORE=postgres (`BAL_TEST_STORE=postgres make integration` runs the whole
suite against PostgreSQL; CI runs it on SQLite and the PostgreSQL tests of their own).

With PostgreSQL, one throwaway cluster serves the whole run (started at first use,
removed at exit) and every node gets a fresh database of it.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
from contextlib import closing

import psycopg

from platone_bal.config import Settings
from tests import postgres_cluster

_CLUSTER: list[postgres_cluster.PostgresCluster] = []


def on_postgres() -> bool:
    return os.environ.get("BAL_TEST_STORE", "sqlite") == "postgres"


def new_database() -> str:
    """A fresh database on the run's cluster."""
    if not _CLUSTER:
        _CLUSTER.append(postgres_cluster.started_cluster())
        atexit.register(_CLUSTER[0].remove)
    return _CLUSTER[0].create_database()


_DATABASES: dict[str, str] = {}


def store_env(data_dir: object = None) -> dict[str, str]:
    """BAL_ variables that put a node on the chosen store (none for SQLite); a node
    started again on the same `data_dir` gets the same database, as it would its file."""
    if not on_postgres():
        return {}
    if data_dir is None:
        url = new_database()
    else:
        if str(data_dir) not in _DATABASES:
            _DATABASES[str(data_dir)] = new_database()
        url = _DATABASES[str(data_dir)]
    return {"BAL_STORE": "postgres", "BAL_DATABASE_URL": url}


def store_settings(data_dir: object = None) -> dict[str, object]:
    """The same as Settings keyword arguments."""
    return {key.removeprefix("BAL_").lower(): value for key, value in store_env(data_dir).items()}


def settings_env(settings: Settings) -> dict[str, str]:
    """BAL_ variables naming the store `settings` use (for `bal` commands on its data)."""
    if settings.store != "postgres" or settings.database_url is None:
        return {}
    return {"BAL_STORE": "postgres", "BAL_DATABASE_URL": settings.database_url.get_secret_value()}


def execute(settings: Settings, sql: str) -> None:
    """Run one statement on the store of `settings` behind the node's back (tampering)."""
    if settings.store == "postgres" and settings.database_url is not None:
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as pg:
            pg.execute(sql.encode())
        return
    with closing(sqlite3.connect(settings.data_dir / "scd.sqlite3")) as db, db:
        db.execute(sql)
