"""Set points of bal-setpoints on SQLite: SetPointStore."""

from __future__ import annotations

from typing import Any

from platone_bal.adapters.setpoint_rows import SETPOINT_COLUMNS, setpoint_from_row
from platone_bal.adapters.sqlite.connection import SqliteDatabase
from platone_bal.adapters.sqlite.node_state import fenced
from platone_bal.ports import MAX_ROW_ID, Fence, StoredSetPoint


class SqliteSetPoints(SqliteDatabase):
    """SetPointStore."""

    def setpoint(self, setpoint_id: int) -> StoredSetPoint | None:
        if not 0 < setpoint_id <= MAX_ROW_ID:
            return None
        return self._one_setpoint("id = ?", setpoint_id)

    def setpoint_at(self, index: int) -> StoredSetPoint | None:
        if not 0 <= index <= MAX_ROW_ID:
            return None
        return self._one_setpoint("idx = ?", index)

    def setpoints(
        self,
        producer: str | None = None,
        after: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[StoredSetPoint]:
        order = "id DESC" if newest_first else "id"
        after = min(after, MAX_ROW_ID)
        if producer is None:
            return self._setpoints(f"id > ? ORDER BY {order} LIMIT ?", after, limit)
        clause = f"producer = ? AND id > ? ORDER BY {order} LIMIT ?"
        return self._setpoints(clause, producer, after, limit)

    def setpoints_to_deliver(self, below: int, limit: int = 100) -> list[StoredSetPoint]:
        return self._setpoints("status = 'issued' AND idx < ? ORDER BY idx LIMIT ?", below, limit)

    def mark_delivered(self, setpoint_id: int, when: str, fence: Fence | None = None) -> None:
        with self._transaction() as db:
            fenced(db, fence)
            db.execute(
                "UPDATE setpoints SET status = 'delivered', delivered = ?"
                " WHERE id = ? AND status = 'issued'",
                (when, setpoint_id),
            )

    def expire_setpoints(self, now: str) -> int:
        with self._transaction() as db:
            return db.execute(
                "UPDATE setpoints SET status = 'expired'"
                " WHERE status IN ('issued', 'delivered') AND end_at < ?",
                (now,),
            ).rowcount

    def _one_setpoint(self, where: str, value: int) -> StoredSetPoint | None:
        found = self._setpoints(f"{where} LIMIT 1", value)
        return found[0] if found else None

    def _setpoints(self, clause: str, *params: Any) -> list[StoredSetPoint]:
        rows = self._connection().execute(
            f"SELECT {SETPOINT_COLUMNS} FROM setpoints WHERE {clause}",  # noqa: S608 (constants)
            params,
        )
        return [setpoint_from_row(row) for row in rows]
