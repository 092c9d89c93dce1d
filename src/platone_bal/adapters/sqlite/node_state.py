"""What the nodes share, who leads and what waits for the sequencer, on SQLite:
NodeStateStore, LeaseStore, and the leaf queue of the Transaction port.

One SQLite file serves one machine, but the rules are those of PostgreSQL, so the
services cannot tell the stores apart: the first value put is kept, and a lease is
timed by the database's clock (`NOW` below) and fenced by its token.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from platone_bal.adapters.sqlite.connection import SqliteDatabase
from platone_bal.ports import Fence, LeafKind, LeaseLost, QueuedLeaf
from platone_bal.ports.records import lease_lost

NOW = "((julianday('now') - 2440587.5) * 86400.0)"
"""The database's clock in Unix seconds, with fractions (`unixepoch()` has none here)."""


class SqliteNodeState(SqliteDatabase):
    """NodeStateStore and LeaseStore."""

    def queued_leaves(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM log_queue").fetchone()[0])

    def node_value(self, name: str) -> str | None:
        row = (
            self._connection()
            .execute("SELECT value FROM node_state WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def put_node_value(self, name: str, value: str) -> str:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO node_state (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (name, value),
            )
            return str(
                db.execute("SELECT value FROM node_state WHERE name = ?", (name,)).fetchone()[0]
            )

    def take_lease(self, name: str, holder: str, seconds: float) -> int | None:
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO leases (name, holder, token, expires) VALUES (?, ?, 1, {NOW} + ?)"  # noqa: S608
                " ON CONFLICT (name) DO UPDATE SET"
                " token = token + (leases.holder != excluded.holder OR leases.expires <= "
                f"{NOW}), holder = excluded.holder, expires = excluded.expires"
                f" WHERE leases.holder = excluded.holder OR leases.expires <= {NOW}",
                (name, holder, seconds),
            )
            row = db.execute(
                "SELECT token FROM leases WHERE name = ? AND holder = ?", (name, holder)
            ).fetchone()
            return None if row is None else int(row[0])

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as db:
            db.execute(
                f"UPDATE leases SET expires = {NOW} WHERE name = ? AND holder = ?",  # noqa: S608
                (name, holder),
            )


def fenced(db: sqlite3.Connection, fence: Fence | None) -> None:
    """A leader's write: its lease checked first, in the same transaction."""
    if fence is not None:
        check_lease(db, fence.lease, fence.holder, fence.token)


def check_lease(db: sqlite3.Connection, name: str, holder: str, token: int) -> None:
    """Inside a write transaction (SQLite's one write lock: the lease cannot change
    hands before it ends)."""
    row = db.execute(
        f"SELECT expires > {NOW} FROM leases WHERE name = ? AND holder = ? AND token = ?",  # noqa: S608
        (name, holder, token),
    ).fetchone()
    if row is None or not row[0]:
        raise LeaseLost(lease_lost(Fence(name, holder, token)))


def queue_leaves(db: sqlite3.Connection, leaves: Sequence[QueuedLeaf]) -> None:
    if not leaves:
        return
    db.executemany(
        "INSERT INTO log_queue (log, kind, ref, leaf) VALUES (?, ?, ?, ?)",
        [(leaf.log, leaf.kind.value, leaf.ref, leaf.leaf) for leaf in leaves],
    )


def take_queued(db: sqlite3.Connection, limit: int) -> list[QueuedLeaf]:
    rows = db.execute(
        "DELETE FROM log_queue WHERE id IN (SELECT id FROM log_queue ORDER BY id LIMIT ?)"
        " RETURNING id, log, kind, ref, leaf",
        (limit,),
    ).fetchall()
    return sorted(
        (
            QueuedLeaf(log, LeafKind(kind), ref, bytes(leaf), id)
            for id, log, kind, ref, leaf in rows
        ),
        key=lambda leaf: leaf.id,
    )
