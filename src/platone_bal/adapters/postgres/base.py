"""What every part of the PostgreSQL store shares: the pool, faults, value conversions.

Each aggregate's part (users, devices, grants, readings, ...) is a small mixin over
`PoolUser`, so a part reads like the SQL it runs; `PostgresStore` composes them. Every
public method of a part is wrapped by `unavailable_on_faults`: a lost connection, a
server that went away, a full disk or a deadlock the server broke is a fault of the
store, not of the data, so callers see `StoreUnavailable` (retry later) and never a
psycopg class, exactly as with SQLite.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg.abc import QueryNoTemplate as Query
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from platone_bal.ports import MAX_ROW_ID, Fence, LeaseLost, StoreUnavailable
from platone_bal.ports.records import lease_lost

Connection = psycopg.Connection[TupleRow]
Pool = ConnectionPool[Connection]
Row = tuple[Any, ...]

_T = TypeVar("_T")

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def unavailable(error: psycopg.Error) -> StoreUnavailable:
    return StoreUnavailable(f"PostgreSQL: {error}".strip())


def unavailable_on_faults(cls: type[_T]) -> type[_T]:
    """Every public method of `cls` raises `StoreUnavailable` where psycopg raises
    OperationalError (connection lost, server shut down, disk full, deadlock, pool
    timeout): callers tell a store fault (retry) from a data fault (reject) without
    knowing PostgreSQL."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except psycopg.OperationalError as error:
                raise unavailable(error) from error

        return translated

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, wrap(member))
    return cls


class PoolUser:
    """A part of the store: runs statements on a connection borrowed from the pool.

    Connections are in autocommit mode: a read is one statement and needs no
    transaction; a write of several statements opens one with `conn.transaction()`.
    """

    _pool: Pool

    def _all(self, query: Query, params: Sequence[Any] = (), *, binary: bool = False) -> list[Row]:
        """All rows of one query; `binary` asks for binary results (bytea and integers
        arrive without the text format's hex and digit parsing: the audit's pages)."""
        with self._pool.connection() as conn:
            return conn.execute(query, params, binary=binary).fetchall()

    def _one(self, query: Query, params: Sequence[Any] = ()) -> Row | None:
        with self._pool.connection() as conn:
            return conn.execute(query, params).fetchone()

    def _run(self, query: Query, params: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it changed."""
        with self._pool.connection() as conn:
            return conn.execute(query, params).rowcount

    def _fenced_run(self, fence: Fence | None, query: Query, params: Sequence[Any] = ()) -> int:
        """`_run`, in a transaction that first checks `fence` (a leader's write)."""
        if fence is None:
            return self._run(query, params)
        with self._pool.connection() as conn, conn.transaction():
            check_lease(conn, fence)
            return conn.execute(query, params).rowcount


def check_lease(conn: Connection, fence: Fence) -> None:
    """LeaseLost unless `fence` holds now; its row then stays locked `FOR SHARE` until
    the transaction ends, so the lease cannot change hands meanwhile (see node_state)."""
    row = conn.execute(
        "SELECT expires > clock_timestamp() FROM leases"
        " WHERE name = %s AND holder = %s AND token = %s FOR SHARE",
        (fence.lease, fence.holder, fence.token),
    ).fetchone()
    if row is None or not row[0]:
        raise LeaseLost(lease_lost(fence))


def is_row_id(value: int) -> bool:
    """Whether a bigint can hold `value`: asked for a larger id (a URL's 2^64), the
    answer is "no such row", as on SQLite."""
    return -MAX_ROW_ID - 1 <= value <= MAX_ROW_ID


def utc(moment: datetime) -> datetime:
    """A timestamptz as the aware UTC datetime the SQLite store parses back."""
    return moment.astimezone(UTC)


def rfc3339(text: str) -> datetime:
    """A time the store wrote as text (a leaf's `time` or `received`), as a timestamptz
    value; a time without an offset counts as UTC, as the dashboard's `since` does."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def number(value: str) -> float:
    """A reading's decimal string as a float for charts (`series`): what SQLite's
    CAST(value AS REAL) gives for the decimals the BAL accepts (1e400 is infinity);
    anything else, which ingest never stores, counts 0.0 as SQLite counts it."""
    return float(value) if _DECIMAL.fullmatch(value.strip()) else 0.0
