"""The Merkle logs' nodes and heads, checkpoints, anchors and egress positions on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

from platone_bal.adapters.sqlite.connection import IN_CHUNK, SqliteDatabase
from platone_bal.adapters.sqlite.node_state import fenced
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
from platone_bal.ports import Fence, NodeKey


def log_head(db: sqlite3.Connection, log: str) -> int:
    """The log's size as its head row says (0 for a log never written)."""
    row = db.execute("SELECT size FROM log_heads WHERE log = ?", (log,)).fetchone()
    return int(row[0]) if row else 0


def nodes_at(db: sqlite3.Connection, log: str, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
    """The stored nodes among `keys`, a few hundred per query: the keys as a constant
    table joined on the primary key (a row-value `(level, idx) IN (...)` made SQLite
    scan the whole log: 63 ms instead of 0.02 ms for a proof's nodes of a 200k log)."""
    found: dict[NodeKey, bytes] = {}
    wanted = sorted(set(keys))
    step = IN_CHUNK // 2
    for start in range(0, len(wanted), step):
        chunk = wanted[start : start + step]
        pairs = ", ".join("(?, ?)" for _ in chunk)
        rows = db.execute(
            f"WITH k (level, idx) AS (VALUES {pairs})"  # noqa: S608
            " SELECT n.level, n.idx, n.hash FROM k"
            " JOIN nodes n ON n.log = ? AND n.level = k.level AND n.idx = k.idx",
            (*(value for key in chunk for value in key), log),
        )
        found.update(((level, index), bytes(value)) for level, index, value in rows)
    return found


class SqliteNodes:
    """NodeReader (and BatchNodeReader) over the nodes table of one log."""

    def __init__(self, db: sqlite3.Connection, log: str) -> None:
        self._db = db
        self._log = log

    def node(self, level: int, index: int) -> bytes:
        row = self._db.execute(
            "SELECT hash FROM nodes WHERE log = ? AND level = ? AND idx = ?",
            (self._log, level, index),
        ).fetchone()
        if row is None:
            raise KeyError(f"log {self._log!r} has no node ({level}, {index})")
        return bytes(row[0])

    def nodes_at(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        return nodes_at(self._db, self._log, keys)


class SqliteLogs(SqliteDatabase):
    """LogStore, CheckpointStore and PositionStore."""

    def log_size(self, log: str) -> int:
        """How many leaves the log holds."""
        return log_head(self._connection(), log)

    def nodes(self, log: str) -> SqliteNodes:
        """Stored perfect-subtree hashes of a log, for roots and proofs."""
        return SqliteNodes(self._connection(), log)

    def add_checkpoint(self, signed: SignedCheckpoint, fence: Fence | None = None) -> None:
        with self._transaction() as db:
            fenced(db, fence)
            db.execute(
                f"INSERT OR IGNORE INTO checkpoints ({CHECKPOINT_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?)",
                checkpoint_values(signed),
            )

    def _checkpoint_where(self, where: str, params: tuple[Any, ...]) -> SignedCheckpoint | None:
        row = (
            self._connection()
            .execute(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE {where}", params)  # noqa: S608
            .fetchone()
        )
        return checkpoint_from_row(row) if row else None

    def latest_checkpoint(self, log: str) -> SignedCheckpoint | None:
        return self._checkpoint_where("log = ? ORDER BY size DESC LIMIT 1", (log,))

    def latest_checkpoints(self, log: str, limit: int) -> list[SignedCheckpoint]:
        rows = self._connection().execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints"  # noqa: S608
            " WHERE log = ? ORDER BY size DESC LIMIT ?",
            (log, limit),
        )
        return [checkpoint_from_row(row) for row in rows]

    def checkpoint(self, log: str, size: int) -> SignedCheckpoint | None:
        return self._checkpoint_where("log = ? AND size = ?", (log, size))

    def checkpoints(self, log: str, after: int = 0, limit: int = 100) -> list[SignedCheckpoint]:
        rows = self._connection().execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints"  # noqa: S608
            " WHERE log = ? AND size > ? ORDER BY size LIMIT ?",
            (log, after, limit),
        )
        return [checkpoint_from_row(row) for row in rows]

    def checkpoint_covering(self, log: str, index: int) -> SignedCheckpoint | None:
        anchored = self._checkpoint_where(
            "log = ? AND size > ? AND size IN (SELECT size FROM anchors WHERE log = ?)"
            " ORDER BY size LIMIT 1",
            (log, index, log),
        )
        if anchored is not None:
            return anchored
        return self._checkpoint_where(
            "log = ? AND size > ? ORDER BY size DESC LIMIT 1", (log, index)
        )

    def add_anchor(self, anchor: Anchor, fence: Fence | None = None) -> None:
        with self._transaction() as db:
            fenced(db, fence)
            db.execute(
                f"INSERT OR IGNORE INTO anchors ({ANCHOR_INSERT_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                anchor_values(anchor),
            )

    def _anchor_where(self, where: str, params: tuple[Any, ...]) -> Anchor | None:
        row = (
            self._connection()
            .execute(f"SELECT {ANCHOR_COLUMNS} FROM anchors WHERE {where}", params)  # noqa: S608
            .fetchone()
        )
        return anchor_from_row(row)[1] if row else None

    def anchor(self, log: str, size: int) -> Anchor | None:
        return self._anchor_where("log = ? AND size = ? ORDER BY id LIMIT 1", (log, size))

    def latest_anchor(self, log: str) -> Anchor | None:
        return next(iter(self.latest_anchors(log, 1)), None)

    def latest_anchors(self, log: str, limit: int) -> list[Anchor]:
        """The log's `limit` largest anchors, newest first (the explorer's table)."""
        rows = self._connection().execute(
            f"SELECT {ANCHOR_COLUMNS} FROM anchors WHERE log = ? ORDER BY size DESC LIMIT ?",  # noqa: S608
            (log, limit),
        )
        return [anchor_from_row(row)[1] for row in rows]

    def anchor_by_tx(self, tx: str) -> Anchor | None:
        return self._anchor_where("tx = ? ORDER BY id LIMIT 1", (tx.lower(),))

    def anchor_below(self, log: str, size: int) -> Anchor | None:
        return self._anchor_where("log = ? AND size < ? ORDER BY size DESC LIMIT 1", (log, size))

    def anchors(
        self, log: str | None = None, after: int = 0, limit: int = 100
    ) -> list[tuple[int, Anchor]]:
        where, params = ("id > ?", [after]) if log is None else ("id > ? AND log = ?", [after, log])
        rows = self._connection().execute(
            f"SELECT {ANCHOR_COLUMNS} FROM anchors WHERE {where} ORDER BY id LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [anchor_from_row(row) for row in rows]

    def egress_position(self, log: str) -> int:
        row = (
            self._connection()
            .execute("SELECT position FROM egress WHERE log = ?", (log,))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def set_egress_position(self, log: str, position: int, fence: Fence | None = None) -> None:
        with self._transaction() as db:
            fenced(db, fence)
            db.execute(
                "INSERT INTO egress (log, position) VALUES (?, ?)"
                " ON CONFLICT (log) DO UPDATE SET position = excluded.position",
                (log, position),
            )
