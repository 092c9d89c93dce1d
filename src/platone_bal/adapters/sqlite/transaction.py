"""The unit of work on SQLite: one BEGIN IMMEDIATE transaction on one connection."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from platone_bal.adapters.setpoint_rows import (
    NEW_SETPOINT_COLUMNS,
    answer_values,
    new_setpoint_values,
)
from platone_bal.adapters.sqlite.logs import log_head, nodes_at
from platone_bal.adapters.sqlite.node_state import check_lease, queue_leaves, take_queued
from platone_bal.adapters.store_rows import (
    ACCESS_ENTRY_COLUMNS,
    MESSAGE_COLUMNS,
    READING_LEAF_COLUMNS,
    access_entry_values,
    message_values,
    reading_leaf_values,
)
from platone_bal.domain.merkle import Node
from platone_bal.domain.messages import MessageRecord
from platone_bal.ports import AccessRow, NodeKey, QueuedLeaf, ReadingRow


class SqliteTransaction:
    """Transaction port: the writes of one batch; SQLite's write lock (taken by BEGIN
    IMMEDIATE) is the log head's lock, so `lock_log` only reads the head."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def lock_log(self, log: str) -> int:
        return log_head(self._db, log)

    def check_lease(self, name: str, holder: str, token: int) -> None:
        check_lease(self._db, name, holder, token)

    def queue_leaves(self, leaves: Sequence[QueuedLeaf]) -> None:
        queue_leaves(self._db, leaves)

    def take_queued(self, limit: int) -> list[QueuedLeaf]:
        return take_queued(self._db, limit)

    def nodes_at(self, log: str, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        return nodes_at(self._db, log, keys)

    def add_nodes(self, log: str, nodes: Sequence[Node]) -> None:
        self._db.executemany(
            "INSERT INTO nodes (log, level, idx, hash) VALUES (?, ?, ?, ?)",
            [(log, level, index, value) for level, index, value in nodes],
        )

    def set_log_size(self, log: str, size: int) -> None:
        self._db.execute(
            "INSERT INTO log_heads (log, size) VALUES (?, ?)"
            " ON CONFLICT (log) DO UPDATE SET size = excluded.size",
            (log, size),
        )

    def add_messages(self, records: Sequence[MessageRecord]) -> list[int | None]:
        """One INSERT OR IGNORE per message: the unique index `messages_once` turns a
        producer's repeated payload into an ignored row (None), and so does a payload
        whose message was archived (`archived_once`); a rejection is always kept."""
        ids: list[int | None] = []
        for record in records:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO messages ({MESSAGE_COLUMNS})"  # noqa: S608
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ? = 'rejected' OR NOT EXISTS"
                " (SELECT 1 FROM archived_once WHERE producer = ? AND digest = ?)",
                (*message_values(record), record.outcome.value, record.producer, record.digest),
            )
            ids.append(cursor.lastrowid if cursor.rowcount else None)
        return ids

    def add_readings(self, rows: Sequence[ReadingRow]) -> None:
        """The readings, and the counters of the dashboard's device list."""
        values = []
        hours: Counter[tuple[str, str, str]] = Counter()
        last: dict[tuple[str, str], str] = {}
        for row in rows:
            leaf = row.record.leaf
            received = leaf["source"]["received"]
            values.append((row.message_id, *reading_leaf_values(row)))
            hours[leaf["producer"], received[:13], leaf["device"]] += 1
            key = (leaf["producer"], leaf["device"])
            last[key] = max(last.get(key, received), received)
        self._db.executemany(
            f"INSERT INTO readings (message_id, {READING_LEAF_COLUMNS})"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        days = Counter((row.log, row.record.leaf["time"][:10]) for row in rows)
        self._db.executemany(
            "INSERT INTO live_days (log, day, readings) VALUES (?, ?, ?)"
            " ON CONFLICT DO UPDATE SET readings = readings + excluded.readings",
            [(*key, count) for key, count in days.items()],
        )
        self._db.executemany(
            "INSERT INTO device_hours (producer, hour, device, readings) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO UPDATE SET readings = readings + excluded.readings",
            [(*key, count) for key, count in hours.items()],
        )
        self._db.executemany(
            "INSERT INTO device_last (producer, device, last_received) VALUES (?, ?, ?)"
            " ON CONFLICT DO UPDATE SET last_received ="
            " max(last_received, excluded.last_received)",
            [(*key, received) for key, received in last.items()],
        )

    def add_rejections(self, rows: Sequence[tuple[int, str | None, str]]) -> None:
        self._db.executemany(
            "INSERT INTO rejections (message_id, producer, reason) VALUES (?, ?, ?)", rows
        )

    def add_access_entries(self, rows: Sequence[AccessRow]) -> None:
        self._db.executemany(
            f"INSERT INTO audit ({ACCESS_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
            [access_entry_values(row) for row in rows],
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO audit_producers (producer, idx) VALUES (?, ?)",
            [(producer, row.index) for row in rows for producer in row.entry.producers],
        )

    def add_setpoint(self, index: int, leaf: dict[str, Any], leaf_bytes: bytes) -> int:
        self._db.execute(
            "INSERT INTO setpoint_log (idx, kind, leaf) VALUES (?, 'setpoint', ?)",
            (index, leaf_bytes),
        )
        cursor = self._db.execute(
            f"INSERT INTO setpoints ({NEW_SETPOINT_COLUMNS})"  # noqa: S608 (constants)
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            new_setpoint_values(index, leaf),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add_setpoint_answer(
        self, index: int, setpoint_id: int, leaf: dict[str, Any], leaf_bytes: bytes
    ) -> None:
        self._db.execute(
            "INSERT INTO setpoint_log (idx, kind, leaf) VALUES (?, 'answer', ?)",
            (index, leaf_bytes),
        )
        self._db.execute(
            "UPDATE setpoints SET status = ?, answer_idx = ?, answer_status = ?,"
            " answer_time = ?, answer_signer = ? WHERE id = ?",
            (*answer_values(index, leaf), setpoint_id),
        )
