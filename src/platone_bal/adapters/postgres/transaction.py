"""One write transaction: what `Recorder` and `LogAppender` drive through the port.

The log's rules stay in `LogAppender`: this only stores what it is given. Two nodes
appending to one log are serialised by the head row: `lock_log` holds it with
`SELECT ... FOR UPDATE` until commit, so the second writer reads the size (and, its
next statement having a new snapshot, the nodes) the first one committed.

Rows go in by COPY, a batch per statement. Locks are always taken in one order
(payload claims sorted, then the head, then partitions and counters sorted), so two
writers wait for each other but never deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from platone_bal.adapters.postgres.base import (
    Connection,
    number,
    rfc3339,
    unavailable_on_faults,
    utc,
)
from platone_bal.adapters.postgres.logs import fetch_nodes
from platone_bal.adapters.postgres.node_state import check_lease, queue_leaves, take_queued
from platone_bal.adapters.postgres.partitions import KnownDays, ensure_days
from platone_bal.adapters.setpoint_rows import (
    NEW_SETPOINT_COLUMNS,
    answer_values,
    new_setpoint_values,
)
from platone_bal.adapters.store_rows import (
    ACCESS_ENTRY_COLUMNS,
    MESSAGE_COLUMNS,
    READING_LEAF_COLUMNS,
    access_entry_values,
    message_values,
    reading_leaf_values,
)
from platone_bal.domain.merkle import Node
from platone_bal.domain.messages import MessageRecord, Outcome
from platone_bal.ports import AccessRow, NodeKey, QueuedLeaf, ReadingRow

MESSAGE_COPY = f"COPY messages (id, received_at, {MESSAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
MESSAGE_TYPES = (
    "int8", "timestamptz", "text", "text", "text", "text", "text", "text", "int8", "bytea",
    "text", "text", "int4",
)  # fmt: skip
_READING_COPY = (
    f"COPY readings (time_at, message_id, message_at, message, {READING_LEAF_COLUMNS}, number)"
    " FROM STDIN (FORMAT BINARY)"
)
_READING_TYPES = (
    "timestamptz", "int8", "timestamptz", "text", "text", "int8", "text", "text", "text",
    "text", "text", "text", "text", "text", "text", "text", "bytea", "float8",
)  # fmt: skip


@unavailable_on_faults
class PgTransaction:
    """Transaction port on one pooled connection inside `conn.transaction()`."""

    def __init__(self, conn: Connection, known: KnownDays) -> None:
        self._conn = conn
        self._known = known
        self.days: dict[str, set[date]] = {"messages": set(), "readings": set()}
        """Day partitions this transaction saw or made: known to the process on commit."""
        self._messages: dict[int, tuple[datetime, str]] = {}
        """id -> (received_at, digest) of the messages written or looked up here."""

    @property
    def connection(self) -> Connection:
        """The transaction's connection (the store's other parts write through it too)."""
        return self._conn

    def check_lease(self, name: str, holder: str, token: int) -> None:
        check_lease(self._conn, name, holder, token)

    def queue_leaves(self, leaves: Sequence[QueuedLeaf]) -> None:
        queue_leaves(self._conn, leaves)

    def take_queued(self, limit: int) -> list[QueuedLeaf]:
        return take_queued(self._conn, limit)

    # the log's tree

    def lock_log(self, log: str) -> int:
        query = "SELECT size FROM log_heads WHERE log = %s FOR UPDATE"
        row = self._conn.execute(query, (log,)).fetchone()
        if row is None:  # a new log: make its head, or wait for a racing writer's
            self._conn.execute(
                "INSERT INTO log_heads (log, size) VALUES (%s, 0) ON CONFLICT (log) DO NOTHING",
                (log,),
            )
            row = self._conn.execute(query, (log,)).fetchone()
        assert row is not None
        return int(row[0])

    def nodes_at(self, log: str, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        return fetch_nodes(self._conn, log, keys)

    def add_nodes(self, log: str, nodes: Sequence[Node]) -> None:
        self.copy(
            "COPY nodes (log, level, idx, hash) FROM STDIN (FORMAT BINARY)",
            ((log, level, index, value) for level, index, value in nodes),
            ("text", "int4", "int8", "bytea"),
        )

    def set_log_size(self, log: str, size: int) -> None:
        self._conn.execute("UPDATE log_heads SET size = %s WHERE log = %s", (size, log))

    # messages, readings, rejections

    def add_messages(self, records: Sequence[MessageRecord]) -> list[int | None]:
        claims: dict[tuple[str, str], int] = {}  # (producer, digest) -> first position
        kept: list[int] = []
        for position, record in enumerate(records):
            if record.producer is None or record.outcome is Outcome.REJECTED:
                kept.append(position)  # every rejected delivery is evidence of its own
            else:
                claims.setdefault((record.producer, record.digest), position)
        claimed = self._claim(sorted(claims))
        kept.extend(position for key, position in claims.items() if key in claimed)
        kept.sort()
        ids: list[int | None] = [None] * len(records)
        if not kept:
            return ids
        fresh = self._conn.execute(
            "SELECT nextval('messages_id_seq') FROM generate_series(1, %s)", (len(kept),)
        ).fetchall()
        self.ensure_days("messages", (utc(records[n].received).date() for n in kept))
        rows = []
        for position, (message_id,) in zip(kept, sorted(fresh), strict=True):
            record = records[position]
            ids[position] = message_id
            self._messages[message_id] = (record.received, record.digest)
            rows.append((message_id, record.received, *message_values(record)))
        self.copy(MESSAGE_COPY, rows, MESSAGE_TYPES)
        return ids

    def _claim(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (producer, payload digest) pairs were not taken yet; they are
        taken now (a racing writer with the same payload waits for this commit)."""
        if not keys:
            return set()
        rows = self._conn.execute(
            "INSERT INTO message_once (producer, digest)"
            " SELECT * FROM unnest(%s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING RETURNING producer, digest",
            ([producer for producer, _ in keys], [digest for _, digest in keys]),
        ).fetchall()
        return {(producer, digest) for producer, digest in rows}

    def add_readings(self, rows: Sequence[ReadingRow]) -> None:
        if not rows:
            return
        messages = self._message_rows({row.message_id for row in rows})
        copied = []
        for row in rows:
            leaf = row.record.leaf
            received_at, digest = messages[row.message_id]
            copied.append(
                (
                    rfc3339(leaf["time"]),
                    row.message_id,
                    received_at,
                    digest,
                    *reading_leaf_values(row),
                    number(leaf["value"]),
                )
            )
        self.ensure_days("readings", (utc(values[0]).date() for values in copied))
        self.copy(_READING_COPY, copied, _READING_TYPES)
        self._count_arrivals(rows)
        days = sorted(Counter((row.log, row.record.leaf["time"][:10]) for row in rows).items())
        self.count_live_days(days)

    def count_live_days(self, days: Sequence[tuple[tuple[str, str], int]]) -> None:
        """Add to the live readings of ((log, ISO day), readings) pairs, sorted."""
        self._conn.execute(
            "INSERT INTO live_days (log, day, readings)"
            " SELECT * FROM unnest(%s::text[], %s::date[], %s::bigint[])"
            " ON CONFLICT (log, day)"
            " DO UPDATE SET readings = live_days.readings + excluded.readings",
            (
                [log for (log, _), _ in days],
                [day for (_, day), _ in days],
                [count for _, count in days],
            ),
        )

    def _count_arrivals(self, rows: Sequence[ReadingRow]) -> None:
        """Keep `device_hours` and `device_last` up to date with these readings."""
        hours: Counter[tuple[str, str, datetime]] = Counter()
        last: dict[tuple[str, str], tuple[datetime, str]] = {}
        for row in rows:
            leaf = row.record.leaf
            key = (leaf["producer"], leaf["device"])
            received = leaf["source"]["received"]
            at = rfc3339(received)
            hours[(*key, at.replace(minute=0, second=0, microsecond=0))] += 1
            if key not in last or at > last[key][0]:
                last[key] = (at, received)
        counted = sorted(hours.items())
        self._conn.execute(
            "INSERT INTO device_hours (producer, device, hour, readings)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[])"
            " ON CONFLICT (producer, device, hour)"
            " DO UPDATE SET readings = device_hours.readings + excluded.readings",
            [[key[n] for key, _ in counted] for n in range(3)] + [[c for _, c in counted]],
        )
        latest = sorted(last.items())
        self._conn.execute(
            "INSERT INTO device_last (producer, device, received, received_at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " ON CONFLICT (producer, device) DO UPDATE"
            " SET received = excluded.received, received_at = excluded.received_at"
            " WHERE excluded.received_at > device_last.received_at",
            (
                [producer for (producer, _), _ in latest],
                [device for (_, device), _ in latest],
                [text for _, (_, text) in latest],
                [at for _, (at, _) in latest],
            ),
        )

    def add_rejections(self, rows: Sequence[tuple[int, str | None, str]]) -> None:
        if not rows:
            return
        messages = self._message_rows({message_id for message_id, _, _ in rows})
        self.copy(
            "COPY rejections (message_id, message_at, producer, reason) FROM STDIN",
            (
                (message_id, messages[message_id][0], producer, reason)
                for message_id, producer, reason in rows
            ),
        )

    def _message_rows(self, ids: set[int]) -> dict[int, tuple[datetime, str]]:
        """(received_at, digest) of stored messages: the ones this transaction wrote,
        else from the table."""
        missing = ids - self._messages.keys()
        if missing:
            for message_id, received_at, digest in self._conn.execute(
                "SELECT id, received_at, digest FROM messages WHERE id = ANY(%s)",
                (sorted(missing),),
            ):
                self._messages[message_id] = (received_at, digest)
        unknown = ids - self._messages.keys()
        if unknown:
            raise psycopg.IntegrityError(f"no stored message has id {min(unknown)}")
        return self._messages

    # the access log

    def add_access_entries(self, rows: Sequence[AccessRow]) -> None:
        if not rows:
            return
        self.copy(
            f"COPY audit ({ACCESS_ENTRY_COLUMNS}) FROM STDIN",
            (access_entry_values(row) for row in rows),
        )
        self.copy(
            "COPY audit_producers (idx, pos, producer) FROM STDIN",
            (
                (row.index, position, producer)
                for row in rows
                for position, producer in enumerate(row.entry.producers)
            ),
        )

    # set points

    def add_setpoint(self, index: int, leaf: dict[str, Any], leaf_bytes: bytes) -> int:
        self._conn.execute(
            "INSERT INTO setpoint_log (idx, kind, leaf) VALUES (%s, 'setpoint', %s)",
            (index, leaf_bytes),
        )
        row = self._conn.execute(
            f"INSERT INTO setpoints ({NEW_SETPOINT_COLUMNS})"  # noqa: S608 (constants)
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            new_setpoint_values(index, leaf),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def add_setpoint_answer(
        self, index: int, setpoint_id: int, leaf: dict[str, Any], leaf_bytes: bytes
    ) -> None:
        self._conn.execute(
            "INSERT INTO setpoint_log (idx, kind, leaf) VALUES (%s, 'answer', %s)",
            (index, leaf_bytes),
        )
        self._conn.execute(
            "UPDATE setpoints SET status = %s, answer_idx = %s, answer_status = %s,"
            " answer_time = %s, answer_signer = %s WHERE id = %s",
            (*answer_values(index, leaf), setpoint_id),
        )

    # helpers

    def ensure_days(self, table: str, days: Iterable[date]) -> None:
        wanted = set(days) - self.days[table]
        ensure_days(self._conn, table, self._known.missing(table, wanted))
        self.days[table].update(wanted)

    def copy(
        self, statement: str, rows: Iterable[Sequence[Any]], types: Sequence[str] = ()
    ) -> None:
        """COPY `rows` in; with `types`, in the binary format (no text to parse)."""
        with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
