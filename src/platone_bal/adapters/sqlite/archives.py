"""ArchiveStore on SQLite: live days, archive files, and the moves between the two."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta

from platone_bal.adapters.sqlite.connection import IN_CHUNK, SqliteDatabase
from platone_bal.adapters.sqlite.node_state import check_lease
from platone_bal.adapters.store_rows import (
    ARCHIVE_COLUMNS,
    ARCHIVED_MESSAGE_COLUMNS,
    ARCHIVED_READING_COLUMNS,
    archive_from_row,
    archive_values,
    archived_message_from_row,
    archived_message_values,
    archived_reading_from_row,
    archived_reading_values,
)
from platone_bal.domain.archive import ArchivedMessage, ArchivedReading
from platone_bal.ports import ArchiveConflict, ArchiveRecord, ArchiveStatus, Fence


class SqliteArchives(SqliteDatabase):
    """ArchiveStore."""

    def prepare_days(self, ahead: int) -> None:
        return None  # one table; its indices need nothing per day

    def live_days(self, log: str) -> list[tuple[date, int]]:
        rows = self._connection().execute(
            "SELECT day, readings FROM live_days WHERE log = ? AND readings > 0 ORDER BY day",
            (log,),
        )
        return [(date.fromisoformat(day), count) for day, count in rows]

    def day_readings(self, log: str, day: date, below: int) -> list[ArchivedReading]:
        rows = self._connection().execute(
            f"SELECT {ARCHIVED_READING_COLUMNS} FROM readings"  # noqa: S608 (constants)
            " WHERE log = ? AND time >= ? AND time < ? AND idx < ? ORDER BY idx",
            (log, *_day_range(day), below),
        )
        return [archived_reading_from_row(row) for row in rows]

    def day_messages(self, log: str, day: date, below: int) -> list[ArchivedMessage]:
        rows = self._connection().execute(
            f"SELECT {ARCHIVED_MESSAGE_COLUMNS} FROM messages"  # noqa: S608 (constants)
            " WHERE id IN (SELECT message_id FROM readings"
            " WHERE log = ? AND time >= ? AND time < ? AND idx < ?) ORDER BY id",
            (log, *_day_range(day), below),
        )
        return [archived_message_from_row(row) for row in rows]

    def archives(self, log: str | None = None) -> list[ArchiveRecord]:
        rows = self._connection().execute(
            f"SELECT {ARCHIVE_COLUMNS} FROM archives"  # noqa: S608 (constants)
            " WHERE ? IS NULL OR log = ? ORDER BY log, day, part",
            (log, log),
        )
        return [archive_from_row(row) for row in rows]

    def archive_day(self, record: ArchiveRecord, indices: Sequence[int], fence: Fence) -> None:
        with self._transaction() as db:
            check_lease(db, fence.lease, fence.holder, fence.token)
            _mark(db, indices)
            found = db.execute(
                "SELECT COUNT(*) FROM readings WHERE log = ? AND time >= ? AND time < ?"
                " AND idx IN (SELECT idx FROM marked)",
                (record.log, *_day_range(record.day)),
            ).fetchone()[0]
            if found != len(indices):
                raise ArchiveConflict(
                    f"{record.log} {record.day}: {found} of the {len(indices)} readings "
                    "to archive are live"
                )
            db.execute("CREATE TEMP TABLE IF NOT EXISTS leaving (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM leaving")
            db.execute(
                "INSERT OR IGNORE INTO leaving (id) SELECT message_id FROM readings"
                " WHERE log = ? AND idx IN (SELECT idx FROM marked)",
                (record.log,),
            )
            db.execute(
                "DELETE FROM readings WHERE log = ? AND idx IN (SELECT idx FROM marked)",
                (record.log,),
            )
            db.execute(
                "DELETE FROM leaving WHERE EXISTS (SELECT 1 FROM readings r"
                " WHERE r.message_id = leaving.id) OR EXISTS (SELECT 1 FROM rejections j"
                " WHERE j.message_id = leaving.id) OR EXISTS (SELECT 1 FROM log_queue q"
                " WHERE q.kind = 'reading' AND q.ref = leaving.id)"
            )
            db.execute(
                "INSERT OR IGNORE INTO archived_once (producer, digest)"
                " SELECT producer, digest FROM messages WHERE id IN (SELECT id FROM leaving)"
                " AND producer IS NOT NULL AND outcome != 'rejected'"
            )
            db.execute("DELETE FROM messages WHERE id IN (SELECT id FROM leaving)")
            db.execute(
                "UPDATE live_days SET readings = readings - ? WHERE log = ? AND day = ?",
                (len(indices), record.log, record.day.isoformat()),
            )
            db.execute(
                f"INSERT INTO archives ({ARCHIVE_COLUMNS})"  # noqa: S608 (constants)
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        with self._transaction() as db:
            check_lease(db, fence.lease, fence.holder, fence.token)
            _mark(db, [reading.index for reading in readings])
            live = {
                index
                for (index,) in db.execute(
                    "SELECT idx FROM readings WHERE log = ? AND idx IN (SELECT idx FROM marked)",
                    (record.log,),
                )
            }
            missing = [reading for reading in readings if reading.index not in live]
            message_ids = _put_messages(db, messages, {r.message_id for r in missing})
            rows = []
            for reading in missing:
                values = archived_reading_values(reading)
                rows.append((*values[:2], message_ids[reading.message_id], *values[3:]))
            _put_readings(db, rows)
            db.execute(
                "INSERT INTO live_days (log, day, readings) VALUES (?, ?, ?)"
                " ON CONFLICT DO UPDATE SET readings = readings + excluded.readings",
                (record.log, record.day.isoformat(), len(missing)),
            )
            db.execute(
                "UPDATE archives SET status = ?, restored = ? WHERE log = ? AND day = ?"
                " AND part = ?",
                (ArchiveStatus.RESTORED.value, when, record.log, record.day.isoformat(),
                 record.part),
            )  # fmt: skip
            return len(missing)


_INSERT_READING = (
    f"INSERT INTO readings ({ARCHIVED_READING_COLUMNS})"  # noqa: S608 (constants)
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_MESSAGE = (
    f"INSERT INTO messages ({ARCHIVED_MESSAGE_COLUMNS})"  # noqa: S608 (constants)
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _put_readings(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """All in one statement; should an id have been given to a later reading since
    (SQLite gives a deleted newest row's id again), row by row, that one with a new id."""
    db.execute("SAVEPOINT restoring")
    try:
        db.executemany(_INSERT_READING, rows)
    except sqlite3.IntegrityError:
        db.execute("ROLLBACK TO restoring")
        for values in rows:
            try:
                db.execute(_INSERT_READING, values)
            except sqlite3.IntegrityError:
                db.execute(_INSERT_READING, (None, *values[1:]))
    db.execute("RELEASE restoring")


def _put_messages(
    db: sqlite3.Connection, messages: Sequence[ArchivedMessage], needed: set[int]
) -> dict[int, int]:
    """The `needed` messages stored again (one still live is used as it is); old id ->
    id now. An archived message's id may since name another message (SQLite gives a
    deleted newest row's id again): it then gets a new one."""
    wanted = {message.id: message for message in messages if message.id in needed}
    if lacking := needed - wanted.keys():
        raise ArchiveConflict(f"the archive lacks messages {sorted(lacking)[:5]}")
    ids = sorted(wanted)
    taken: dict[int, tuple[object, object]] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        for message_id, producer, digest in db.execute(
            f"SELECT id, producer, digest FROM messages WHERE id IN ({marks})",  # noqa: S608
            chunk,
        ):
            taken[message_id] = (producer, digest)
    now = {message_id: message_id for message_id in ids}
    db.executemany(
        _INSERT_MESSAGE,
        [archived_message_values(m) for m in wanted.values() if m.id not in taken],
    )
    for message in wanted.values():
        if message.id in taken and taken[message.id] != (message.producer, message.digest):
            cursor = db.execute(_INSERT_MESSAGE, (None, *archived_message_values(message)[1:]))
            assert cursor.lastrowid is not None
            now[message.id] = cursor.lastrowid
    return now


def _day_range(day: date) -> tuple[str, str]:
    """Times of `day` (fixed-width RFC 3339 UTC text) are >= the first, < the second."""
    return day.isoformat(), (day + timedelta(days=1)).isoformat()


def _mark(db: sqlite3.Connection, indices: Sequence[int]) -> None:
    """The indices in a temporary table `marked` (a day's may be many more than SQLite
    takes as parameters)."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS marked (idx INTEGER PRIMARY KEY)")
    db.execute("DELETE FROM marked")
    db.executemany("INSERT OR IGNORE INTO marked (idx) VALUES (?)", [(i,) for i in indices])
