"""Queries of readings, messages and rejections (what `Transaction` wrote).

A reading row carries its message's digest, so a page of readings joins nothing.
Pages are keyset pages on the id, as on SQLite; a time filter becomes a condition on
`time_at`, the partition key, so a query for a window reads only that window's days.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from platone_bal.adapters.postgres.base import PoolUser, is_row_id, unavailable_on_faults
from platone_bal.adapters.store_rows import indexed_leaves, stored_reading_from_row
from platone_bal.domain.grants import Slice
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import ReadingQuery, RejectionQuery, StoredReading, StoredRejection

_READING_COLUMNS = (
    "id, log, idx, producer, owner, device, time, measurand, value, unit, attrs, format,"
    " received, message"
)


def slice_clause(part: Slice) -> tuple[str, list[Any]]:
    """SQL condition (on `readings`) for one slice of a producer's data."""
    clauses: list[str] = ["producer = %s"]
    values: list[Any] = [part.producer]
    for column, names in (("device", part.devices), ("measurand", part.measurands)):
        if names is not None:  # an empty set matches nothing, as ANY('{}') does
            clauses.append(f"{column} = ANY(%s::text[])")
            values.append(sorted(names))
    if part.since is not None:
        clauses.append("time_at >= %s")
        values.append(part.since)
    if part.until is not None:
        clauses.append("time_at < %s")
        values.append(part.until)
    return "(" + " AND ".join(clauses) + ")", values


def slices_clause(slices: tuple[Slice, ...]) -> tuple[str, list[Any]]:
    """One condition for "inside one of `slices`" (none: FALSE)."""
    if not slices:
        return "FALSE", []
    alternatives, params = [], []
    for part in slices:
        where, values = slice_clause(part)
        alternatives.append(where)
        params.extend(values)
    return "(" + " OR ".join(alternatives) + ")", params


@unavailable_on_faults
class ReadingTables(PoolUser):
    """ReadingStore's queries (but device activity and series: `activity.py`)."""

    def readings(self, query: ReadingQuery) -> list[StoredReading]:
        clauses: list[str] = ["id > %s"]
        params: list[Any] = [query.after]
        if query.newest_first and query.before is not None:
            clauses.append("id < %s")
            params.append(query.before)
        for column, value in (
            ("producer", query.producer),
            ("device", query.device),
            ("measurand", query.measurand),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if query.since is not None:
            clauses.append("time_at >= %s")
            params.append(query.since)
        if query.until is not None:
            clauses.append("time_at < %s")
            params.append(query.until)
        if query.slices is not None:
            if not query.slices:
                return []
            where, values = slices_clause(query.slices)
            clauses.append(where)
            params.extend(values)
        order = "id DESC" if query.newest_first else "id"
        return self._readings(" AND ".join(clauses), params, query.limit, order)

    def reading(self, reading_id: int) -> StoredReading | None:
        if not is_row_id(reading_id):
            return None
        return next(iter(self._readings("id = %s", [reading_id], 1)), None)

    def readings_in_log(self, log: str, start: int, limit: int) -> list[StoredReading]:
        return self._readings("log = %s AND idx >= %s", [log, start], limit, "idx")

    def _readings(
        self, where: str, params: list[Any], limit: int, order: str = "id"
    ) -> list[StoredReading]:
        rows = self._all(
            f"SELECT {_READING_COLUMNS} FROM readings"  # noqa: S608 (columns are constants)
            f" WHERE {where} ORDER BY {order} LIMIT %s",
            (*params, limit),
            binary=True,
        )
        return [stored_reading_from_row(row) for row in rows]

    def leaf_bytes(self, log: str, index: int) -> bytes | None:
        if not is_row_id(index):
            return None
        if log == SETPOINT_LOG:
            row = self._one("SELECT leaf FROM setpoint_log WHERE idx = %s", (index,))
        else:
            row = self._one("SELECT leaf FROM readings WHERE log = %s AND idx = %s", (log, index))
        return bytes(row[0]) if row else None

    def leaves(self, log: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._all(
            "SELECT idx, leaf FROM readings WHERE log = %s AND idx >= %s ORDER BY idx LIMIT %s",
            (log, start, limit),
        )
        return indexed_leaves(rows)

    def rejections(self, query: RejectionQuery) -> list[StoredRejection]:
        clauses: list[str] = ["j.id > %s"]
        params: list[Any] = [query.after]
        if query.producer is not None:
            clauses.append("j.producer = %s")
            params.append(query.producer)
        rows = self._all(
            "SELECT j.id, m.received, m.channel, m.topic, j.producer, m.sender, j.reason,"  # noqa: S608
            " m.digest, m.size, m.format FROM rejections j JOIN messages m"
            " ON m.id = j.message_id AND m.received_at = j.message_at"
            f" WHERE {' AND '.join(clauses)}"
            f" ORDER BY j.id {'DESC' if query.newest_first else 'ASC'} LIMIT %s",
            (*params, query.limit),
        )
        return [StoredRejection(*row) for row in rows]

    def recorded(self, messages: Collection[tuple[str | None, str]]) -> set[tuple[str | None, str]]:
        wanted = set(messages)
        if not wanted:
            return set()
        rows = self._all(
            "SELECT DISTINCT producer, digest FROM messages WHERE digest = ANY(%s::text[])",
            (sorted({digest for _, digest in wanted}),),
        )
        return {(producer, digest) for producer, digest in rows if (producer, digest) in wanted}
