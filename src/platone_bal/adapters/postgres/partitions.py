"""Day partitions of `readings` and `messages`, made on demand by the writer.

A batch's transaction makes the partitions of the days it touches before it copies
its rows in, so a row never lands in the DEFAULT partition (which stays as a safety
net: a row there would stop that day's partition from being made later, and that is
an operator's repair, never a lost reading).

Two writers may need a new day at the same moment. `CREATE TABLE IF NOT EXISTS` does
not make that safe (the second does not see the first's uncommitted table and fails on
the catalog's unique index), so each day is made under a transaction-level advisory
lock on (table, day): the second writer waits for the first to commit, then finds the
table. Days known to exist are cached per process, learnt only after a commit (a
rolled-back transaction's partition is gone), so a busy writer pays the check once a
day and process.

CREATE TABLE ... PARTITION OF takes an ACCESS EXCLUSIVE lock on the parent: it waits
for every running query of the table, and every query asked after it waits for it. So
it waits at most `CREATE_LOCK_TIMEOUT`; then the batch fails with `StoreUnavailable`
and is retried, instead of a long `bal audit` query stalling the API behind the
writer. The store makes today's and tomorrow's partitions when it starts, so a
running node rarely makes one inside a write at all (only for a reading of another
day: a back-fill, or a node running past midnight).

A partition an operator drops (retention) is still believed to exist by a running
process; a write for that day then lands in the DEFAULT partition until the process
restarts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, timedelta

from psycopg import sql

from platone_bal.adapters.postgres.base import Connection

PARTITIONED = {"messages": 0x42414C01, "readings": 0x42414C02}
"""Day-partitioned tables, each with the first key of its advisory locks."""


def partition_name(table: str, day: date) -> str:
    """e.g. readings_20260101 (not strftime: its %Y writes year 1 as "1")."""
    return f"{table}_{day.year:04d}{day.month:02d}{day.day:02d}"


class KnownDays:
    """The day partitions this process has seen committed, per table."""

    def __init__(self) -> None:
        self._days: dict[str, set[date]] = {table: set() for table in PARTITIONED}
        self._lock = threading.Lock()

    def missing(self, table: str, days: Iterable[date]) -> list[date]:
        with self._lock:
            known = self._days[table]
            return sorted(set(days) - known)

    def learn(self, table: str, days: Iterable[date]) -> None:
        with self._lock:
            self._days[table].update(days)


CREATE_LOCK_TIMEOUT = "5s"
"""How long making a partition waits for the queries running on its parent table."""


def ensure_days(conn: Connection, table: str, days: Iterable[date]) -> None:
    """Make `table`'s partitions for `days`, inside the caller's transaction."""
    lock_class = PARTITIONED[table]
    for day in sorted(set(days)):
        name = partition_name(table, day)
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (lock_class, day.toordinal()))
        row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        if row is not None and row[0] is not None:
            continue
        low = sql.Literal(f"{day.isoformat()} 00:00:00+00")
        high = (
            sql.SQL("MAXVALUE")
            if day == date.max
            else sql.Literal(f"{(day + timedelta(days=1)).isoformat()} 00:00:00+00")
        )
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (CREATE_LOCK_TIMEOUT,))
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(name), sql.Identifier(table), low, high
            )
        )
        conn.execute("SET LOCAL lock_timeout TO DEFAULT")
