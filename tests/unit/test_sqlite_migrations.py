"""A database made before numbered migrations is brought up to the current schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.sqlite.schema import BASE_SCHEMA, MIGRATIONS


def test_an_old_database_gets_its_heads_counters_and_audit_producers(tmp_path: Path) -> None:
    path = tmp_path / "scd.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(BASE_SCHEMA)  # as versions before the migrations table made it
    old.executemany(
        "INSERT INTO nodes (log, level, idx, hash) VALUES (?, ?, ?, ?)",
        [("bal-main", 0, i, bytes(32)) for i in range(5)] + [("bal-audit", 0, 0, bytes(32))],
    )
    old.execute(
        "INSERT INTO messages (id, channel, topic, digest, size, payload, received, outcome,"
        " readings) VALUES (1, 'mqtt', 't', 'd', 1, x'00', '2026-01-01T10:00:00.000000Z',"
        " 'accepted', 2)"
    )
    old.executemany(
        "INSERT INTO readings (message_id, log, idx, producer, owner, device, time, measurand,"
        " value, attrs, format, received, leaf) VALUES (1, 'bal-main', ?, 'p', 'o', ?, 't',"
        " 'm', '1', '{}', 'f', ?, x'00')",
        [
            (0, "meter1", "2026-01-01T10:00:00.000000Z"),
            (1, "meter1", "2026-01-01T10:30:00.000000Z"),
            (2, "meter2", "2026-01-01T11:00:00.000000Z"),
        ],
    )
    old.execute(
        "INSERT INTO audit (idx, time, who, action, producers, leaf)"
        " VALUES (0, 't', 'consumer1', 'readings.read', ' p q ', x'00')"
    )
    old.commit()
    old.close()

    store = SqliteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.log_size("bal-main") == 5
    assert store.log_size("bal-audit") == 1
    assert store.audit_entries(producer="q") == [(0, b"\x00")]
    assert store.audit_entries(producer="r") == []
    assert store.audit_columns(-1, 10) == [(0, "t", "consumer1", "readings.read", "p q")]
    assert store.device_activity("p", "2026-01-01T10:59:00.000000Z") == {
        "meter1": ("2026-01-01T10:30:00.000000Z", 2),  # counted by the hour of `since`
        "meter2": ("2026-01-01T11:00:00.000000Z", 1),
    }
    store.close()
    again = SqliteStore(path)  # a second open applies nothing twice
    assert again.log_size("bal-main") == 5
    versions = again._connection().execute("SELECT version FROM schema_migrations").fetchall()
    assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
    again.close()
