"""The Shared Customer Database on PostgreSQL: every aggregate's part over one pool.

Several BAL nodes share one database (ARCHITECTURE §8): the schema is migrated at
start under an advisory lock, a log's indices are handed out under its head row's
lock, and a payload is claimed once across nodes. Connections come from a
`psycopg_pool.ConnectionPool` that checks a connection before lending it, so after a
server restart the store recovers by itself; while the server is away, calls raise
`StoreUnavailable` after `timeout` seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from platone_bal.adapters.postgres.access import AccessTables
from platone_bal.adapters.postgres.activity import ActivityQueries
from platone_bal.adapters.postgres.archives import ArchiveTables
from platone_bal.adapters.postgres.base import Connection, unavailable
from platone_bal.adapters.postgres.devices import DeviceTables
from platone_bal.adapters.postgres.grants import GrantTables
from platone_bal.adapters.postgres.logs import LogTables
from platone_bal.adapters.postgres.node_state import NodeStateTables
from platone_bal.adapters.postgres.partitions import PARTITIONED, KnownDays, ensure_days
from platone_bal.adapters.postgres.raw import RawTables
from platone_bal.adapters.postgres.readings import ReadingTables
from platone_bal.adapters.postgres.schema import migrate
from platone_bal.adapters.postgres.setpoints import SetPointTables
from platone_bal.adapters.postgres.transaction import PgTransaction
from platone_bal.adapters.postgres.users import UserTables
from platone_bal.ports import Store

IDLE_IN_TRANSACTION = "10s"
"""A node stalled inside a transaction (stopped, swapped out, cut off) loses its session
after this, and with it the locks a new leader waits for (see `node_state`)."""

WORK_MEM_BYTES = 32 << 20
"""The least `work_mem` of the node's sessions (see `_configure`)."""


def _configure(conn: Connection) -> None:
    """Every pooled connection speaks UTC, so dates of partitions and hours are UTC days.

    And a commit returns only once its WAL is flushed: the node acknowledges a message
    (PUBACK, 202) after the commit, so on a server set to `synchronous_commit = off` a
    PostgreSQL crash lost acknowledged readings (31 of 1,500 in the fault test). `off`
    becomes `local` for the node's sessions; any stricter setting is kept.

    A page of readings is sorted by id after its index found it by time: a device-day
    (8,640 rows, about 3 MB) spilled to disk at the default 4 MB `work_mem`, so the
    node's sessions use at least WORK_MEM (a server set higher keeps its own).

    A session idle inside a transaction for IDLE_IN_TRANSACTION is ended by the server.
    """
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")
    row = conn.execute(
        "SELECT setting::bigint * 1024 < %s FROM pg_settings WHERE name = 'work_mem'",
        (WORK_MEM_BYTES,),
    ).fetchone()
    if row is not None and row[0]:
        conn.execute(f"SET work_mem = '{WORK_MEM_BYTES // 1024}kB'")
    row = conn.execute("SHOW synchronous_commit").fetchone()
    if row is not None and row[0] == "off":
        conn.execute("SET synchronous_commit = 'local'")


class PostgresStore(
    UserTables,
    DeviceTables,
    GrantTables,
    ReadingTables,
    ActivityQueries,
    LogTables,
    AccessTables,
    RawTables,
    SetPointTables,
    NodeStateTables,
    ArchiveTables,
):
    """Store port on one PostgreSQL database (`url`: postgresql://USER:PASSWORD@HOST/DB)."""

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 10.0
    ) -> None:
        self._known = KnownDays()
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            check=ConnectionPool.check_connection,
            timeout=timeout,
            name="bal-store",
            open=False,
        )
        try:
            self._pool.open()
            with self._pool.connection() as conn:
                migrate(conn)
                self._make_days_ahead(conn, 1)
        except psycopg.OperationalError as error:
            self._pool.close()
            raise unavailable(error) from error
        except BaseException:
            self._pool.close()
            raise

    def prepare_days(self, ahead: int) -> None:
        """The partitions of today and the `ahead` days after it (the archiver's job
        calls this every hour, so a running node never makes one inside a write)."""
        with self._pool.connection() as conn:
            self._make_days_ahead(conn, ahead)

    def _make_days_ahead(self, conn: Connection, ahead: int) -> None:
        """Today's partitions and the next `ahead` days', so that writes rarely make
        one; skipped when a long query holds a table (a write makes its day then)."""
        today = datetime.now(UTC).date()
        days = [today + timedelta(days=n) for n in range(ahead + 1)]
        days = [day for day in days if self._known.missing("readings", [day])
                or self._known.missing("messages", [day])]  # fmt: skip
        if not days:
            return
        try:
            with conn.transaction():
                for table in PARTITIONED:
                    ensure_days(conn, table, days)
        except psycopg.errors.LockNotAvailable:
            return
        for table in PARTITIONED:
            self._known.learn(table, days)

    @contextmanager
    def transaction(self) -> Iterator[PgTransaction]:
        """A transaction that commits when the block ends and rolls back if it raises;
        the day partitions it made become known to this process once it commits."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                tx = PgTransaction(conn, self._known)
                yield tx
        except psycopg.OperationalError as error:
            raise unavailable(error) from error
        for table, days in tx.days.items():
            self._known.learn(table, days)

    def close(self) -> None:
        self._pool.close()


def _is_the_whole_port(store: PostgresStore) -> Store:
    """Never called: mypy --strict checks here that PostgresStore is all of `Store`."""
    return store
