"""The Merkle logs' heads and nodes, their checkpoints, anchors and egress positions.

A log's size is its `log_heads` row, which a writer moves while holding it locked
(`transaction.py`); reading it never counts nodes. Proofs and roots read nodes through
`StoredNodes`, whose `nodes_at` fetches any set of (level, index) in one query, so
`domain.merkle.with_nodes` makes a proof one round trip instead of O(log n).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from platone_bal.adapters.postgres.base import (
    Connection,
    Pool,
    PoolUser,
    is_row_id,
    unavailable_on_faults,
)
from platone_bal.adapters.store_rows import (
    ANCHOR_COLUMNS,
    ANCHOR_INSERT_COLUMNS,
    CHECKPOINT_COLUMNS,
    anchor_from_row,
    anchor_values,
    checkpoint_from_row,
    checkpoint_values,
)
from platone_bal.domain.checkpoint import Anchor, SignedCheckpoint
from platone_bal.domain.merkle import BatchNodeReader
from platone_bal.ports import Fence, NodeKey


def fetch_nodes(conn: Connection, log: str, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
    """The stored nodes of `log` among `keys`, in one query."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT n.level, n.idx, n.hash FROM nodes n"
        " JOIN unnest(%s::integer[], %s::bigint[]) AS k (level, idx)"
        " ON n.level = k.level AND n.idx = k.idx WHERE n.log = %s",
        ([level for level, _ in wanted], [index for _, index in wanted], log),
    ).fetchall()
    return {(int(level), int(index)): bytes(value) for level, index, value in rows}


@unavailable_on_faults
class StoredNodes:
    """A log's stored perfect-subtree hashes, one by one or many at a time."""

    def __init__(self, pool: Pool, log: str) -> None:
        self._pool = pool
        self._log = log

    def node(self, level: int, index: int) -> bytes:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT hash FROM nodes WHERE log = %s AND level = %s AND idx = %s",
                (self._log, level, index),
            ).fetchone()
        if row is None:
            raise KeyError(f"log {self._log!r} has no node ({level}, {index})")
        return bytes(row[0])

    def nodes_at(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        with self._pool.connection() as conn:
            return fetch_nodes(conn, self._log, keys)


@unavailable_on_faults
class LogTables(PoolUser):
    """LogStore, CheckpointStore and PositionStore."""

    # the logs

    def log_size(self, log: str) -> int:
        row = self._one("SELECT size FROM log_heads WHERE log = %s", (log,))
        return int(row[0]) if row else 0

    def nodes(self, log: str) -> BatchNodeReader:
        return StoredNodes(self._pool, log)

    # checkpoints

    def add_checkpoint(self, signed: SignedCheckpoint, fence: Fence | None = None) -> None:
        self._fenced_run(
            fence,
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS})"  # noqa: S608 (constant)
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            checkpoint_values(signed),
        )

    def _checkpoints(self, where: str, params: tuple[Any, ...]) -> list[SignedCheckpoint]:
        rows = self._all(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE {where}",  # noqa: S608
            params,
        )
        return [checkpoint_from_row(row) for row in rows]

    def _first_checkpoint(self, where: str, params: tuple[Any, ...]) -> SignedCheckpoint | None:
        return next(iter(self._checkpoints(where, params)), None)

    def latest_checkpoint(self, log: str) -> SignedCheckpoint | None:
        return self._first_checkpoint("log = %s ORDER BY size DESC LIMIT 1", (log,))

    def checkpoint(self, log: str, size: int) -> SignedCheckpoint | None:
        if not is_row_id(size):
            return None
        return self._first_checkpoint("log = %s AND size = %s", (log, size))

    def checkpoints(self, log: str, after: int = 0, limit: int = 100) -> list[SignedCheckpoint]:
        return self._checkpoints(
            "log = %s AND size > %s ORDER BY size LIMIT %s", (log, after, limit)
        )

    def latest_checkpoints(self, log: str, limit: int) -> list[SignedCheckpoint]:
        return self._checkpoints("log = %s ORDER BY size DESC LIMIT %s", (log, limit))

    def checkpoint_covering(self, log: str, index: int) -> SignedCheckpoint | None:
        anchored = self._first_checkpoint(
            "log = %s AND size > %s AND size IN (SELECT size FROM anchors WHERE log = %s)"
            " ORDER BY size LIMIT 1",
            (log, index, log),
        )
        if anchored is not None:
            return anchored
        return self._first_checkpoint(
            "log = %s AND size > %s ORDER BY size DESC LIMIT 1", (log, index)
        )

    # anchors

    def add_anchor(self, anchor: Anchor, fence: Fence | None = None) -> None:
        self._fenced_run(
            fence,
            f"INSERT INTO anchors ({ANCHOR_INSERT_COLUMNS})"  # noqa: S608 (constant)
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            anchor_values(anchor),
        )

    def _anchors(self, where: str, params: tuple[Any, ...]) -> list[tuple[int, Anchor]]:
        rows = self._all(f"SELECT {ANCHOR_COLUMNS} FROM anchors WHERE {where}", params)  # noqa: S608
        return [anchor_from_row(row) for row in rows]

    def _first_anchor(self, where: str, params: tuple[Any, ...]) -> Anchor | None:
        found = self._anchors(where, params)
        return found[0][1] if found else None

    def anchor(self, log: str, size: int) -> Anchor | None:
        return self._first_anchor("log = %s AND size = %s ORDER BY id LIMIT 1", (log, size))

    def anchor_by_tx(self, tx: str) -> Anchor | None:
        return self._first_anchor("tx = %s ORDER BY id LIMIT 1", (tx.lower(),))

    def anchor_below(self, log: str, size: int) -> Anchor | None:
        return self._first_anchor("log = %s AND size < %s ORDER BY size DESC LIMIT 1", (log, size))

    def anchors(
        self, log: str | None = None, after: int = 0, limit: int = 100
    ) -> list[tuple[int, Anchor]]:
        if log is None:
            return self._anchors("id > %s ORDER BY id LIMIT %s", (after, limit))
        return self._anchors("id > %s AND log = %s ORDER BY id LIMIT %s", (after, log, limit))

    def latest_anchor(self, log: str) -> Anchor | None:
        return next(iter(self.latest_anchors(log, 1)), None)

    def latest_anchors(self, log: str, limit: int) -> list[Anchor]:
        return [a for _, a in self._anchors("log = %s ORDER BY size DESC LIMIT %s", (log, limit))]

    # egress

    def egress_position(self, log: str) -> int:
        row = self._one("SELECT position FROM egress WHERE log = %s", (log,))
        return int(row[0]) if row else 0

    def set_egress_position(self, log: str, position: int, fence: Fence | None = None) -> None:
        self._fenced_run(
            fence,
            "INSERT INTO egress (log, position) VALUES (%s, %s)"
            " ON CONFLICT (log) DO UPDATE SET position = excluded.position",
            (log, position),
        )
