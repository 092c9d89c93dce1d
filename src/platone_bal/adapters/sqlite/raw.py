"""Rows exactly as SQLite holds them, for `bal audit` (values of any type, never parsed)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from platone_bal.adapters.sqlite.access_log import PRODUCERS
from platone_bal.adapters.sqlite.connection import SqliteDatabase
from platone_bal.adapters.store_rows import ANCHOR_COLUMNS, raw_records_from_rows
from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.leaf import LEAF_VERSION
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import RawRecord
from platone_bal.ports.raw_store import NodeRun
from platone_bal.ports.records import LeafRow

# json_object quotes text exactly as RFC 8785 does (the short escapes, \u00xx for other
# control characters, nothing else) and keeps its arguments' order, here the leaf's
# sorted keys; a NULL becomes null; a BLOB is an error (the page is then read raw)
_MEMBERS = (
    "CAST(json_object('device', r.device, 'log', r.log, 'measurand', r.measurand,"
    " 'owner', r.owner, 'producer', r.producer, 'source', json_object('format', r.format,"
    " 'message', m.digest, 'received', r.received), 'time', r.time, 'unit', r.unit,"
    f" 'v', {LEAF_VERSION}, 'value', r.value) AS BLOB)"
)


class SqliteRaw(SqliteDatabase):
    """RawStore."""

    def raw_records(self, log: str, start: int, stop: int) -> list[RawRecord]:
        db = self._connection()
        if log == SETPOINT_LOG:  # each leaf with the set point row it is, or it answers
            rows = db.execute(
                "SELECT l.idx, l.leaf, l.kind, s.producer, s.device, s.measurand, s.value, s.unit,"
                " s.start, s.end_at, s.issuer, s.issued, a.idx, a.answer_status, a.answer_time,"
                " a.answer_signer, a.producer, a.device FROM setpoint_log l"
                " LEFT JOIN setpoints s ON s.idx = l.idx"
                " LEFT JOIN setpoints a ON a.answer_idx = l.idx"
                " WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx",
                (start, stop),
            )
            return raw_records_from_rows(rows)
        if log == AUDIT_LOG:
            rows = db.execute(
                f"SELECT a.idx, a.leaf, a.time, a.who, a.action, {PRODUCERS} FROM audit a"  # noqa: S608
                " WHERE a.idx >= ? AND a.idx < ? ORDER BY a.idx",
                (start, stop),
            )
            return raw_records_from_rows(rows)
        # LEFT JOIN: a reading whose message row is gone is still audited (and found out)
        rows = db.execute(
            "SELECT r.idx, r.leaf, r.log, r.producer, r.owner, r.device, r.time, r.measurand,"
            " r.value, r.unit, r.attrs, r.format, r.received, m.digest, m.id, m.size,"
            " length(m.payload) FROM readings r LEFT JOIN messages m ON m.id = r.message_id"
            " WHERE r.log = ? AND r.idx >= ? AND r.idx < ? ORDER BY r.idx",
            (log, start, stop),
        )
        return raw_records_from_rows(rows)

    def raw_leaf_rows(self, log: str, start: int, stop: int) -> list[LeafRow] | None:
        # +m.size: no affinity, so the sizes compare as Python compares them (5 is not '5')
        try:
            rows = self._connection().execute(
                f"SELECT r.idx, r.leaf, r.attrs, {_MEMBERS},"  # noqa: S608
                " m.id IS NOT NULL AND length(m.payload) IS +m.size"
                " FROM readings r LEFT JOIN messages m ON m.id = r.message_id"
                " WHERE r.log = ? AND r.idx >= ? AND r.idx < ? ORDER BY r.idx",
                (log, start, stop),
            )
            return rows.fetchall()
        except sqlite3.OperationalError:
            return None  # "JSON cannot hold BLOB values"; a fault shows again on the raw read

    def raw_index_from(self, log: str, start: int) -> object | None:
        db = self._connection()
        if log == SETPOINT_LOG:
            row = db.execute(
                "SELECT min(idx) FROM setpoint_log WHERE idx >= ?", (start,)
            ).fetchone()
        elif log == AUDIT_LOG:
            row = db.execute("SELECT min(idx) FROM audit WHERE idx >= ?", (start,)).fetchone()
        else:
            row = db.execute(
                "SELECT min(idx) FROM readings WHERE log = ? AND idx >= ?", (log, start)
            ).fetchone()
        return None if row is None else row[0]

    def raw_nodes(self, log: str, level: int, start: int, stop: int) -> list[tuple[object, object]]:
        rows = self._connection().execute(
            "SELECT idx, hash FROM nodes WHERE log = ? AND level = ? AND idx >= ? AND idx < ?",
            (log, level, start, stop),
        )
        return [(index, value) for index, value in rows]

    def raw_nodes_equal(self, log: str, runs: Sequence[NodeRun]) -> int:
        db = self._connection()
        equal = 0
        for level, start, hashes in runs:
            (count,) = db.execute(
                "SELECT count(*) FROM nodes WHERE log = ? AND level = ? AND idx >= ? AND idx < ?"
                " AND hash = substr(?, (idx - ?) * 32 + 1, 32)",
                (log, level, start, start + len(hashes) // 32, hashes, start),
            ).fetchone()
            equal += int(count)
        return equal

    def raw_checkpoints(
        self, log: str, after: int, limit: int
    ) -> list[tuple[object, object, object, object, object]]:
        rows = self._connection().execute(
            "SELECT size, root, time, signature, signer FROM checkpoints"
            " WHERE log = ? AND size > ? ORDER BY size LIMIT ?",
            (log, after, limit),
        )
        return [
            (size, root, time, signature, signer) for size, root, time, signature, signer in rows
        ]

    def raw_anchors(
        self, log: str, after: int, limit: int
    ) -> list[tuple[int, object, object, object, object, object, object, object]]:
        rows = self._connection().execute(
            f"SELECT {ANCHOR_COLUMNS} FROM anchors WHERE log = ? AND id > ? ORDER BY id LIMIT ?",  # noqa: S608
            (log, after, limit),
        )
        return [
            (int(row_id), size, root, chain_id, contract, tx, block, time)
            for row_id, _, size, root, chain_id, contract, tx, block, time in rows
        ]

    def raw_messages(self, after: int, limit: int) -> list[tuple[int, object, object, object]]:
        rows = self._connection().execute(
            "SELECT id, digest, size, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [
            (int(message_id), digest, size, payload) for message_id, digest, size, payload in rows
        ]

    def raw_message_ids(self, after: int, limit: int) -> list[int]:
        rows = self._connection().execute(
            "SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
        return [int(message_id) for (message_id,) in rows]

    def message_reading_index(self, log: str, message_id: int) -> int | None:
        (index,) = (
            self._connection()
            .execute(
                "SELECT MIN(idx) FROM readings WHERE log = ? AND message_id = ?", (log, message_id)
            )
            .fetchone()
        )
        return index if isinstance(index, int) else None
