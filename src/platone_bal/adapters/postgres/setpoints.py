"""Set points of bal-setpoints on PostgreSQL: SetPointStore."""

from __future__ import annotations

from typing import Any

from platone_bal.adapters.postgres.base import PoolUser, is_row_id, unavailable_on_faults
from platone_bal.adapters.setpoint_rows import SETPOINT_COLUMNS, setpoint_from_row
from platone_bal.ports import MAX_ROW_ID, Fence, StoredSetPoint


@unavailable_on_faults
class SetPointTables(PoolUser):
    """SetPointStore."""

    def setpoint(self, setpoint_id: int) -> StoredSetPoint | None:
        if not is_row_id(setpoint_id):
            return None
        return self._one_setpoint("id = %s", setpoint_id)

    def setpoint_at(self, index: int) -> StoredSetPoint | None:
        if not is_row_id(index):
            return None
        return self._one_setpoint("idx = %s", index)

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
            return self._setpoints(f"id > %s ORDER BY {order} LIMIT %s", after, limit)
        clause = f"producer = %s AND id > %s ORDER BY {order} LIMIT %s"
        return self._setpoints(clause, producer, after, limit)

    def setpoints_to_deliver(self, below: int, limit: int = 100) -> list[StoredSetPoint]:
        return self._setpoints("status = 'issued' AND idx < %s ORDER BY idx LIMIT %s", below, limit)

    def mark_delivered(self, setpoint_id: int, when: str, fence: Fence | None = None) -> None:
        self._fenced_run(
            fence,
            "UPDATE setpoints SET status = 'delivered', delivered = %s"
            " WHERE id = %s AND status = 'issued'",
            (when, setpoint_id),
        )

    def expire_setpoints(self, now: str) -> int:
        return self._run(
            "UPDATE setpoints SET status = 'expired'"
            " WHERE status IN ('issued', 'delivered') AND end_at < %s",
            (now,),
        )

    def _one_setpoint(self, where: str, value: int) -> StoredSetPoint | None:
        found = self._setpoints(f"{where} LIMIT 1", value)
        return found[0] if found else None

    def _setpoints(self, clause: str, *params: Any) -> list[StoredSetPoint]:
        rows = self._all(
            f"SELECT {SETPOINT_COLUMNS} FROM setpoints WHERE {clause}",  # noqa: S608 (constants)
            params,
        )
        return [setpoint_from_row(row) for row in rows]
