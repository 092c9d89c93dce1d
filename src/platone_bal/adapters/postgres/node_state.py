"""What the nodes share, who leads and what waits for the sequencer, on PostgreSQL:
NodeStateStore, LeaseStore, and the leaf queue of the Transaction port.

A lease is timed by the server's `clock_timestamp()`, so nodes whose clocks disagree
still agree on who leads. A leader's write locks the lease row `FOR SHARE`
(`check_lease`), and taking a lease over updates that row: the takeover waits for the
old leader's transaction, and every later write of the old leader fails its check.
A leader stalled inside a transaction holds that lock only until the server ends its
session (`idle_in_transaction_session_timeout`, set for every node session).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg.errors

from platone_bal.adapters.postgres.base import Connection, PoolUser, unavailable_on_faults
from platone_bal.adapters.postgres.base import check_lease as fenced
from platone_bal.ports import Fence, LeafKind, QueuedLeaf, StoreUnavailable

TAKE_LOCK_TIMEOUT = "1s"
"""How long taking or renewing a lease waits for a leader's write that holds the row."""

_TAKE = """
INSERT INTO leases (name, holder, token, expires)
VALUES (%(name)s, %(holder)s, 1, clock_timestamp() + make_interval(secs => %(seconds)s))
ON CONFLICT (name) DO UPDATE SET
    token = leases.token + CASE WHEN leases.holder = excluded.holder
        AND leases.expires > clock_timestamp() THEN 0 ELSE 1 END,
    holder = excluded.holder,
    expires = excluded.expires
WHERE leases.holder = excluded.holder OR leases.expires <= clock_timestamp()
RETURNING token
"""


@unavailable_on_faults
class NodeStateTables(PoolUser):
    """NodeStateStore and LeaseStore."""

    def queued_leaves(self) -> int:
        row = self._one("SELECT count(*) FROM log_queue")
        return int(row[0]) if row else 0

    def node_value(self, name: str) -> str | None:
        row = self._one("SELECT value FROM node_state WHERE name = %s", (name,))
        return None if row is None else str(row[0])

    def put_node_value(self, name: str, value: str) -> str:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO node_state (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (name, value),
            )
            row = conn.execute("SELECT value FROM node_state WHERE name = %s", (name,)).fetchone()
            assert row is not None
            return str(row[0])

    def take_lease(self, name: str, holder: str, seconds: float) -> int | None:
        with self._pool.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(f"SET LOCAL lock_timeout = '{TAKE_LOCK_TIMEOUT}'")
                    row = conn.execute(
                        _TAKE, {"name": name, "holder": holder, "seconds": seconds}
                    ).fetchone()
            except psycopg.errors.LockNotAvailable as error:
                # a leader's write holds the row: whoever holds the lease still does
                raise StoreUnavailable(f"lease {name!r} is busy: {error}") from error
            return None if row is None else int(row[0])

    def release_lease(self, name: str, holder: str) -> None:
        self._run(
            "UPDATE leases SET expires = clock_timestamp() WHERE name = %s AND holder = %s",
            (name, holder),
        )


def check_lease(conn: Connection, name: str, holder: str, token: int) -> None:
    fenced(conn, Fence(name, holder, token))


def queue_leaves(conn: Connection, leaves: Sequence[QueuedLeaf]) -> None:
    if not leaves:
        return
    with (
        conn.cursor() as cursor,
        cursor.copy("COPY log_queue (log, kind, ref, leaf) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["text", "text", "int8", "bytea"])
        for leaf in leaves:
            copy.write_row((leaf.log, leaf.kind.value, leaf.ref, leaf.leaf))


def take_queued(conn: Connection, limit: int) -> list[QueuedLeaf]:
    """The oldest committed leaves; rows another transaction is taking are skipped."""
    rows = conn.execute(
        "DELETE FROM log_queue WHERE id IN"
        " (SELECT id FROM log_queue ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
        " RETURNING id, log, kind, ref, leaf",
        (limit,),
        binary=True,
    ).fetchall()
    return sorted(
        (
            QueuedLeaf(log, LeafKind(kind), ref, bytes(leaf), id)
            for id, log, kind, ref, leaf in rows
        ),
        key=lambda leaf: leaf.id,
    )
