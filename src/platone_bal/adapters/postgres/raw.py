"""Rows exactly as stored, for `bal audit`: RawStore.

Nothing here is converted beyond what psycopg does for the column's type (bytea to
bytes, bigint to int, text to str), so a row someone changed by hand reaches the audit
as it is and becomes a finding that names it. The column sets are the SQLite store's
in the order of `ports.READING_COLUMNS` and `ENTRY_COLUMNS`, so the audit reads both backends alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from platone_bal.adapters.postgres.access import PRODUCERS_TEXT
from platone_bal.adapters.postgres.base import PoolUser, unavailable_on_faults
from platone_bal.adapters.store_rows import raw_records_from_rows
from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.leaf import LEAF_VERSION
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import RawRecord
from platone_bal.ports.raw_store import NodeRun
from platone_bal.ports.records import LeafRow


@unavailable_on_faults
class RawTables(PoolUser):
    """RawStore."""

    def raw_records(self, log: str, start: int, stop: int) -> list[RawRecord]:
        if log == SETPOINT_LOG:  # each leaf with the set point row it is, or it answers
            rows = self._all(
                "SELECT l.idx, l.leaf, l.kind, s.producer, s.device, s.measurand, s.value, s.unit,"
                " s.start, s.end_at, s.issuer, s.issued, a.idx, a.answer_status, a.answer_time,"
                " a.answer_signer, a.producer, a.device FROM setpoint_log l"
                " LEFT JOIN setpoints s ON s.idx = l.idx"
                " LEFT JOIN setpoints a ON a.answer_idx = l.idx"
                " WHERE l.idx >= %s AND l.idx < %s ORDER BY l.idx",
                (start, stop),
                binary=True,
            )
            return raw_records_from_rows(rows)
        if log == AUDIT_LOG:
            rows = self._all(
                f"SELECT a.idx, a.leaf, a.time, a.who, a.action, {PRODUCERS_TEXT}"  # noqa: S608
                " FROM audit a WHERE a.idx >= %s AND a.idx < %s ORDER BY a.idx",
                (start, stop),
                binary=True,
            )
            return raw_records_from_rows(rows)
        # LEFT JOIN: a reading whose message row is gone is still audited (and found out)
        rows = self._all(
            "SELECT r.idx, r.leaf, r.log, r.producer, r.owner, r.device, r.time, r.measurand,"
            " r.value, r.unit, r.attrs, r.format, r.received, m.digest, m.id, m.size,"
            " octet_length(m.payload) FROM readings r LEFT JOIN messages m"
            " ON m.id = r.message_id AND m.received_at = r.message_at"
            " WHERE r.log = %s AND r.idx >= %s AND r.idx < %s ORDER BY r.idx",
            (log, start, stop),
            binary=True,
        )
        return raw_records_from_rows(rows)

    def raw_leaf_rows(self, log: str, start: int, stop: int) -> list[LeafRow] | None:
        # The members are encoded here, not in SQL: PostgreSQL's to_json costs about
        # half a microsecond a value, orjson a tenth of that; for str and None (all a
        # text column gives) orjson writes RFC 8785, and a dict keeps the order given.
        # Only the columns are encoded, never the leaf: a leaf that is not UTF-8 or not
        # JSON cannot make the query fail.
        rows = self._all(
            "SELECT r.idx, r.leaf, r.attrs, r.device, r.log, r.measurand, r.owner,"
            " r.producer, r.format, m.digest, r.received, r.time, r.unit, r.value,"
            " coalesce(m.whole, false) FROM readings r LEFT JOIN LATERAL ("
            # a subquery: the join carries the digest and the verdict, not the payload
            " SELECT m.digest, octet_length(m.payload) IS NOT DISTINCT FROM m.size AS whole"
            " FROM messages m WHERE m.id = r.message_id AND m.received_at = r.message_at"
            " ) m ON true WHERE r.log = %s AND r.idx >= %s AND r.idx < %s ORDER BY r.idx",
            (log, start, stop),
            binary=True,
        )
        dumps = orjson.dumps
        return [
            (
                index,
                leaf,
                attrs,
                dumps(
                    {
                        "device": device,
                        "log": log_id,
                        "measurand": measurand,
                        "owner": owner,
                        "producer": producer,
                        "source": {"format": form, "message": digest, "received": received},
                        "time": time,
                        "unit": unit,
                        "v": LEAF_VERSION,
                        "value": value,
                    }
                ),
                whole,
            )
            for (
                index,
                leaf,
                attrs,
                device,
                log_id,
                measurand,
                owner,
                producer,
                form,
                digest,
                received,
                time,
                unit,
                value,
                whole,
            ) in rows
        ]

    def raw_index_from(self, log: str, start: int) -> object | None:
        if log == SETPOINT_LOG:
            row = self._one("SELECT min(idx) FROM setpoint_log WHERE idx >= %s", (start,))
        elif log == AUDIT_LOG:
            row = self._one("SELECT min(idx) FROM audit WHERE idx >= %s", (start,))
        else:
            row = self._one(
                "SELECT min(idx) FROM readings WHERE log = %s AND idx >= %s", (log, start)
            )
        return None if row is None else row[0]

    def raw_nodes(self, log: str, level: int, start: int, stop: int) -> list[tuple[object, object]]:
        rows = self._all(
            "SELECT idx, hash FROM nodes WHERE log = %s AND level = %s AND idx >= %s AND idx < %s",
            (log, level, start, stop),
        )
        return [(index, value) for index, value in rows]

    def raw_nodes_equal(self, log: str, runs: Sequence[NodeRun]) -> int:
        if not runs:
            return 0
        # one statement for all the runs: a round trip (and a pooled connection's
        # check) costs more than a level of a page's nodes
        count = (
            "(SELECT count(*) FROM nodes WHERE log = %s AND level = %s AND idx >= %s"
            " AND idx < %s AND hash = substring(%b from ((idx - %s) * 32 + 1)::int for 32))"
        )
        params: list[object] = []
        for level, start, hashes in runs:
            params += (log, level, start, start + len(hashes) // 32, hashes, start)
        row = self._one("SELECT " + " + ".join([count] * len(runs)), params)
        return int(row[0]) if row else 0

    def raw_checkpoints(
        self, log: str, after: int, limit: int
    ) -> list[tuple[object, object, object, object, object]]:
        rows = self._all(
            "SELECT size, root, time, signature, signer FROM checkpoints"
            " WHERE log = %s AND size > %s ORDER BY size LIMIT %s",
            (log, after, limit),
        )
        return [
            (size, root, time, signature, signer) for size, root, time, signature, signer in rows
        ]

    def raw_anchors(
        self, log: str, after: int, limit: int
    ) -> list[tuple[int, object, object, object, object, object, object, object]]:
        rows = self._all(
            "SELECT id, size, root, chain_id, contract, tx, block, time FROM anchors"
            " WHERE log = %s AND id > %s ORDER BY id LIMIT %s",
            (log, after, limit),
        )
        return [
            (int(row_id), size, root, chain_id, contract, tx, block, time)
            for row_id, size, root, chain_id, contract, tx, block, time in rows
        ]

    def raw_messages(self, after: int, limit: int) -> list[tuple[int, object, object, object]]:
        # binary: a payload arrives as its bytes, not as hex text twice its size
        rows = self._all(
            "SELECT id, digest, size, payload FROM messages WHERE id > %s ORDER BY id LIMIT %s",
            (after, limit),
            binary=True,
        )
        return [
            (int(message_id), digest, size, payload) for message_id, digest, size, payload in rows
        ]

    def raw_message_ids(self, after: int, limit: int) -> list[int]:
        rows = self._all(
            "SELECT id FROM messages WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
        )
        return [int(message_id) for (message_id,) in rows]

    def message_reading_index(self, log: str, message_id: int) -> int | None:
        row = self._one(
            "SELECT min(idx) FROM readings WHERE log = %s AND message_id = %s", (log, message_id)
        )
        index = row[0] if row else None
        return int(index) if isinstance(index, int) else None
