"""The Shared Customer Database on one SQLite file (WAL), the embedded default."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platone_bal.adapters.sqlite.access_log import SqliteAccessLog
from platone_bal.adapters.sqlite.archives import SqliteArchives
from platone_bal.adapters.sqlite.connection import operational_errors_as_unavailable
from platone_bal.adapters.sqlite.grants import SqliteDevices, SqliteGrants
from platone_bal.adapters.sqlite.logs import SqliteLogs
from platone_bal.adapters.sqlite.node_state import SqliteNodeState
from platone_bal.adapters.sqlite.raw import SqliteRaw
from platone_bal.adapters.sqlite.readings import SqliteReadings
from platone_bal.adapters.sqlite.schema import migrate
from platone_bal.adapters.sqlite.setpoints import SqliteSetPoints
from platone_bal.adapters.sqlite.transaction import SqliteTransaction
from platone_bal.adapters.sqlite.users import SqliteUsers
from platone_bal.ports import StoreUnavailable


@operational_errors_as_unavailable
class SqliteStore(
    SqliteUsers,
    SqliteDevices,
    SqliteGrants,
    SqliteReadings,
    SqliteLogs,
    SqliteAccessLog,
    SqliteRaw,
    SqliteSetPoints,
    SqliteNodeState,
    SqliteArchives,
):
    """Every store port on one SQLite file; the schema migrated at open."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.schema_version = migrate(self._connection())

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        try:
            with self._transaction() as db:
                yield SqliteTransaction(db)
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"SQLite: {error}") from error
