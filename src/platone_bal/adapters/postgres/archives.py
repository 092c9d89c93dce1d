"""ArchiveStore on PostgreSQL: live days, archive files, and the moves between the two.

A day's readings leave their day partition by DELETE (the partition stays, empty, for
a late reading of that day; autovacuum reclaims the space): dropping it would send a
later reading of that day to the DEFAULT partition, which then blocks the day's
partition from being made again. Messages leave theirs once no live reading or
rejection needs them; `message_once` keeps their claims.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, time, timedelta

from platone_bal.adapters.postgres.base import (
    PoolUser,
    check_lease,
    number,
    rfc3339,
    unavailable_on_faults,
    utc,
)
from platone_bal.adapters.postgres.transaction import MESSAGE_COPY, MESSAGE_TYPES, PgTransaction
from platone_bal.adapters.store_rows import (
    ARCHIVE_COLUMNS,
    ARCHIVED_MESSAGE_COLUMNS,
    ARCHIVED_READING_COLUMNS,
    READING_LEAF_COLUMNS,
    archive_from_row,
    archive_values,
    archived_message_from_row,
)
from platone_bal.domain.archive import ArchivedMessage, ArchivedReading
from platone_bal.ports import ArchiveConflict, ArchiveRecord, ArchiveStatus, Fence

_READING_COPY = (
    "COPY readings (id, time_at, message_id, message_at, message,"
    f" {READING_LEAF_COLUMNS}, number) FROM STDIN (FORMAT BINARY)"
)
_READING_TYPES = (
    "int8", "timestamptz", "int8", "timestamptz", "text", "text", "int8", "text", "text",
    "text", "text", "text", "text", "text", "text", "text", "text", "bytea", "float8",
)  # fmt: skip


def _day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


@unavailable_on_faults
class ArchiveTables(PoolUser):
    """ArchiveStore."""

    def transaction(self) -> AbstractContextManager[PgTransaction]:
        raise NotImplementedError  # the store's own (PostgresStore.transaction)

    def live_days(self, log: str) -> list[tuple[date, int]]:
        rows = self._all(
            "SELECT day, readings FROM live_days WHERE log = %s AND readings > 0 ORDER BY day",
            (log,),
        )
        return [(day, int(count)) for day, count in rows]

    def day_readings(self, log: str, day: date, below: int) -> list[ArchivedReading]:
        rows = self._all(
            f"SELECT {ARCHIVED_READING_COLUMNS} FROM readings"  # noqa: S608 (constants)
            " WHERE log = %s AND time_at >= %s AND time_at < %s AND idx < %s ORDER BY idx",
            (log, *_day_range(day), below),
        )
        return [ArchivedReading(row[0], row[1], row[2], bytes(row[3]), *row[4:]) for row in rows]

    def day_messages(self, log: str, day: date, below: int) -> list[ArchivedMessage]:
        """Two queries, each on the partitions it needs: the day's readings name their
        messages with their arrival times, whose range then prunes `messages` (a lookup
        by id alone searches every day partition)."""
        keys = self._all(
            "SELECT DISTINCT message_id, message_at FROM readings"
            " WHERE log = %s AND time_at >= %s AND time_at < %s AND idx < %s",
            (log, *_day_range(day), below),
        )
        if not keys:
            return []
        arrived = [at for _, at in keys]
        rows = self._all(
            f"SELECT {ARCHIVED_MESSAGE_COLUMNS} FROM messages"  # noqa: S608 (constants)
            " WHERE received_at >= %s AND received_at <= %s AND id = ANY(%s) ORDER BY id",
            (min(arrived), max(arrived), sorted({message_id for message_id, _ in keys})),
        )
        return [archived_message_from_row(row) for row in rows]

    def archives(self, log: str | None = None) -> list[ArchiveRecord]:
        rows = self._all(
            f"SELECT {ARCHIVE_COLUMNS} FROM archives"  # noqa: S608 (constants)
            " WHERE %s::text IS NULL OR log = %s ORDER BY log, day, part",
            (log, log),
        )
        return [archive_from_row(row) for row in rows]

    def archive_day(self, record: ArchiveRecord, indices: Sequence[int], fence: Fence) -> None:
        with self._pool.connection() as conn, conn.transaction():
            check_lease(conn, fence)
            gone = conn.execute(
                "DELETE FROM readings WHERE log = %s AND idx = ANY(%s)"
                " AND time_at >= %s AND time_at < %s RETURNING message_id, message_at",
                (record.log, list(indices), *_day_range(record.day)),
            ).fetchall()
            if len(gone) != len(indices):
                raise ArchiveConflict(
                    f"{record.log} {record.day}: {len(gone)} of the {len(indices)} readings "
                    "to archive are live"
                )
            leaving = Counter(gone)  # (message id, arrival) -> its readings leaving now
            keys = sorted(leaving)
            conn.execute(
                "DELETE FROM messages m USING unnest(%s::bigint[], %s::timestamptz[],"
                " %s::int[]) AS g (id, at, n)"
                " WHERE m.received_at >= %s AND m.received_at <= %s"
                " AND m.id = g.id AND m.received_at = g.at"
                " AND (m.readings = g.n"
                "  OR NOT EXISTS (SELECT 1 FROM readings r WHERE r.message_id = g.id))"
                " AND NOT EXISTS (SELECT 1 FROM rejections j WHERE j.message_id = g.id)"
                " AND NOT EXISTS (SELECT 1 FROM log_queue q"
                "  WHERE q.kind = 'reading' AND q.ref = g.id)",
                (
                    [message_id for message_id, _ in keys],
                    [at for _, at in keys],
                    [leaving[key] for key in keys],
                    min(at for _, at in keys),
                    max(at for _, at in keys),
                ),
            )
            conn.execute(
                "UPDATE live_days SET readings = readings - %s WHERE log = %s AND day = %s",
                (len(indices), record.log, record.day),
            )
            conn.execute(
                f"INSERT INTO archives ({ARCHIVE_COLUMNS})"  # noqa: S608 (constants)
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (log, day, part) DO UPDATE SET status = excluded.status,"
                " restored = NULL",
                archive_values(record),
            )

    def restore_archive(
        self,
        record: ArchiveRecord,
        readings: Sequence[ArchivedReading],
        messages: Sequence[ArchivedMessage],
        when: str,
        fence: Fence,
    ) -> int:
        with self.transaction() as tx:
            conn = tx.connection
            check_lease(conn, fence)
            indices = [reading.index for reading in readings]
            live = {
                index
                for (index,) in conn.execute(
                    "SELECT idx FROM readings WHERE log = %s AND idx = ANY(%s)"
                    " AND time_at >= %s AND time_at < %s",
                    (record.log, indices, *_day_range(record.day)),
                )
            }
            missing = [reading for reading in readings if reading.index not in live]
            needed = {reading.message_id for reading in missing}
            by_id = {message.id: message for message in messages if message.id in needed}
            if lacking := needed - by_id.keys():
                raise ArchiveConflict(f"the archive lacks messages {sorted(lacking)[:5]}")
            received = {m.id: rfc3339(m.received) for m in by_id.values()}
            stored = set()
            if needed:
                stored = {
                    message_id
                    for (message_id,) in conn.execute(
                        "SELECT id FROM messages WHERE id = ANY(%s)"
                        " AND received_at >= %s AND received_at <= %s",
                        (sorted(needed), min(received.values()), max(received.values())),
                    )
                }
            fresh = [by_id[message_id] for message_id in sorted(needed - stored)]
            tx.ensure_days("messages", (utc(received[m.id]).date() for m in fresh))
            tx.copy(MESSAGE_COPY, _message_rows(fresh, received), MESSAGE_TYPES)
            rows = list(_reading_rows(missing, by_id, received))
            tx.ensure_days("readings", (rfc3339(r.time).date() for r in missing))
            tx.copy(_READING_COPY, rows, _READING_TYPES)
            tx.count_live_days([((record.log, record.day.isoformat()), len(missing))])
            conn.execute(
                "UPDATE archives SET status = %s, restored = %s"
                " WHERE log = %s AND day = %s AND part = %s",
                (ArchiveStatus.RESTORED.value, when, record.log, record.day, record.part),
            )
            return len(missing)


def _message_rows(
    messages: Sequence[ArchivedMessage], received: dict[int, datetime]
) -> Iterator[tuple[object, ...]]:
    for m in messages:
        yield (
            m.id, received[m.id], m.received, m.channel, m.topic, m.producer, m.sender,
            m.digest, m.size, m.payload, m.format, m.outcome, m.readings,
        )  # fmt: skip


def _reading_rows(
    readings: Sequence[ArchivedReading],
    messages: dict[int, ArchivedMessage],
    received: dict[int, datetime],
) -> Iterator[tuple[object, ...]]:
    for r in readings:
        yield (
            r.id, rfc3339(r.time), r.message_id, received[r.message_id],
            messages[r.message_id].digest, r.log, r.index, r.producer, r.owner, r.device,
            r.time, r.measurand, r.value, r.unit, r.attrs, r.format, r.received, r.leaf,
            number(r.value),
        )  # fmt: skip
