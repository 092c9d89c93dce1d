"""The SQLite schema as numbered migrations, applied in order at open.

A table `schema_migrations` records which ran. Migration 1 is the schema as the first
versions created it (idempotent, so a database made before the table existed is simply
brought up to it); later ones change it. Why not alembic: it brings SQLAlchemy for
nothing else, and each backend has a handful of plain-SQL steps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    wallet        TEXT NOT NULL UNIQUE,
    keystore      TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    token_version INTEGER NOT NULL DEFAULT 0
);
-- Platform clients (OAuth2 client credentials), each acting for one user.
CREATE TABLE IF NOT EXISTS clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    username    TEXT NOT NULL REFERENCES users (username),
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    token_version INTEGER NOT NULL DEFAULT 0
);
-- Grants (the seed's subscriptions): a consumer's access to a slice of a producer's data.
CREATE TABLE IF NOT EXISTS grants (
    id         INTEGER PRIMARY KEY,
    producer   TEXT NOT NULL REFERENCES users (username),
    consumer   TEXT NOT NULL REFERENCES users (username),
    status     TEXT NOT NULL,
    devices    TEXT,
    measurands TEXT,
    since      TEXT,
    until      TEXT,
    expires    TEXT,
    created    TEXT NOT NULL,
    modified   TEXT NOT NULL,
    reason     TEXT,
    decided_by TEXT
);
CREATE INDEX IF NOT EXISTS grants_by_consumer ON grants (consumer, status);
CREATE INDEX IF NOT EXISTS grants_by_producer ON grants (producer, status);
-- Grant decisions on their way to SubscriptionRegistry (signature and tx once recorded).
CREATE TABLE IF NOT EXISTS decisions (
    id         INTEGER PRIMARY KEY,
    grant_id   INTEGER NOT NULL REFERENCES grants (id),
    status     TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    provider   TEXT NOT NULL,
    consumer   TEXT NOT NULL,
    topic      TEXT NOT NULL,
    timestamp  INTEGER NOT NULL,
    signature  TEXT,
    signer     TEXT,
    tx         TEXT,
    block      INTEGER,
    chain_id   INTEGER,
    contract   TEXT,
    error      TEXT
);
CREATE INDEX IF NOT EXISTS decisions_by_grant ON decisions (grant_id, id);
-- A producer's devices; secret_hash is set when a device has MQTT credentials of its own.
CREATE TABLE IF NOT EXISTS devices (
    producer    TEXT NOT NULL REFERENCES users (username),
    device_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    public_key  TEXT,
    secret_hash TEXT,
    created     TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    chain_tx    TEXT,
    PRIMARY KEY (producer, device_id)
) WITHOUT ROWID;
-- The access audit log (log bal-audit): one leaf per access or grant change; its Merkle
-- nodes live in `nodes` like the readings' log.
CREATE TABLE IF NOT EXISTS audit (
    idx       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    who       TEXT NOT NULL,
    action    TEXT NOT NULL,
    producers TEXT NOT NULL,
    leaf      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id        INTEGER PRIMARY KEY,
    channel   TEXT NOT NULL,
    topic     TEXT NOT NULL,
    producer  TEXT,
    sender    TEXT,
    digest    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    payload   BLOB NOT NULL,
    received  TEXT NOT NULL,
    format    TEXT,
    outcome   TEXT NOT NULL,
    readings  INTEGER NOT NULL
);
-- A producer's payload is stored once however often it is delivered; rejected
-- deliveries are all kept, each is evidence of its own.
CREATE UNIQUE INDEX IF NOT EXISTS messages_once
    ON messages (producer, digest) WHERE outcome != 'rejected';
-- Payloads by digest in any outcome: rejections' raw bytes, the broker journal's replay.
CREATE INDEX IF NOT EXISTS messages_by_digest ON messages (digest);
CREATE TABLE IF NOT EXISTS readings (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    log        TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    producer   TEXT NOT NULL,
    owner      TEXT NOT NULL,
    device     TEXT NOT NULL,
    time       TEXT NOT NULL,
    measurand  TEXT NOT NULL,
    value      TEXT NOT NULL,
    unit       TEXT,
    attrs      TEXT NOT NULL,
    format     TEXT NOT NULL,
    received   TEXT NOT NULL,
    leaf       BLOB NOT NULL,
    UNIQUE (log, idx)
);
CREATE INDEX IF NOT EXISTS readings_by_producer ON readings (producer, id);
CREATE INDEX IF NOT EXISTS readings_by_device ON readings (device, time);
CREATE TABLE IF NOT EXISTS rejections (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    producer   TEXT,
    reason     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_by_producer ON rejections (producer, id);
-- Perfect-subtree hashes of each log's Merkle tree (level 0: leaf hashes), written in
-- the same transaction as their readings; proofs read O(log n) of them.
CREATE TABLE IF NOT EXISTS nodes (
    log   TEXT NOT NULL,
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (log, level, idx)
) WITHOUT ROWID;
-- Signed checkpoints (ARCHITECTURE §5), one per size the checkpointer signed.
CREATE TABLE IF NOT EXISTS checkpoints (
    log       TEXT NOT NULL,
    size      INTEGER NOT NULL,
    root      BLOB NOT NULL,
    time      TEXT NOT NULL,
    signature TEXT NOT NULL,
    signer    TEXT NOT NULL,
    PRIMARY KEY (log, size)
) WITHOUT ROWID;
-- How far each log's certified readings have been republished on certified/... topics.
CREATE TABLE IF NOT EXISTS egress (
    log      TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
-- Checkpoints found on chain, with the transaction that put them there.
CREATE TABLE IF NOT EXISTS anchors (
    id       INTEGER PRIMARY KEY,
    log      TEXT NOT NULL,
    size     INTEGER NOT NULL,
    root     BLOB NOT NULL,
    chain_id INTEGER NOT NULL,
    contract TEXT NOT NULL,
    tx       TEXT NOT NULL,
    block    INTEGER NOT NULL,
    time     TEXT NOT NULL,
    UNIQUE (log, size, chain_id, contract)
);
"""

_ADDED_COLUMNS = (("users", "token_version"), ("clients", "token_version"))
"""Columns later versions added before migrations were numbered: a database made before
them gets them as `INTEGER NOT NULL DEFAULT 0` (every user and client starts at 0)."""


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: `executescript` would commit the migration's
    transaction halfway."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip(" \n-"):
        raise ValueError(f"incomplete SQL statement: {statement!r}")


def _base(db: sqlite3.Connection) -> None:
    _run_script(db, BASE_SCHEMA)
    for table, column in _ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")


def _heads_and_indices(db: sqlite3.Connection) -> None:
    """The log's head row (its size, read and moved by the appender inside the write
    transaction, instead of MAX(idx) over the nodes); bal-audit's producers in a table of
    their own (searched by index, not by a padded string; the only copy, so what
    `bal audit` checks is what the search uses); per-device hourly counters
    and latest arrival (the dashboard's device list without scanning a producer's
    readings); an index for
    one device's measurand over time (series and device-day queries)."""
    _run_script(
        db,
        """
        CREATE TABLE log_heads (log TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO log_heads (log, size)
            SELECT log, MAX(idx) + 1 FROM nodes WHERE level = 0 GROUP BY log;
        CREATE TABLE audit_producers (
            producer TEXT NOT NULL,
            idx      INTEGER NOT NULL REFERENCES audit (idx),
            PRIMARY KEY (producer, idx)
        ) WITHOUT ROWID;
        CREATE TABLE device_hours (
            producer TEXT NOT NULL,
            hour     TEXT NOT NULL,
            device   TEXT NOT NULL,
            readings INTEGER NOT NULL,
            PRIMARY KEY (producer, hour, device)
        ) WITHOUT ROWID;
        INSERT INTO device_hours (producer, hour, device, readings)
            SELECT producer, substr(received, 1, 13), device, COUNT(*)
            FROM readings GROUP BY producer, substr(received, 1, 13), device;
        CREATE TABLE device_last (
            producer      TEXT NOT NULL,
            device        TEXT NOT NULL,
            last_received TEXT NOT NULL,
            PRIMARY KEY (producer, device)
        ) WITHOUT ROWID;
        INSERT INTO device_last (producer, device, last_received)
            SELECT producer, device, MAX(received) FROM readings GROUP BY producer, device;
        CREATE INDEX readings_by_series ON readings (producer, device, measurand, time);
        """,
    )
    rows = db.execute("SELECT idx, producers FROM audit").fetchall()
    db.executemany(
        "INSERT OR IGNORE INTO audit_producers (producer, idx) VALUES (?, ?)",
        [(producer, index) for index, producers in rows for producer in producers.split()],
    )
    db.execute("ALTER TABLE audit DROP COLUMN producers")


def _setpoints(db: sqlite3.Connection) -> None:
    """The log bal-setpoints: every leaf (set points and answers) by index, and each set
    point's state with its answer (ARCHITECTURE §8)."""
    _run_script(
        db,
        """
        CREATE TABLE setpoint_log (
            idx  INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            leaf BLOB NOT NULL
        );
        CREATE TABLE setpoints (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            idx           INTEGER NOT NULL UNIQUE REFERENCES setpoint_log (idx),
            producer      TEXT NOT NULL,
            device        TEXT NOT NULL,
            measurand     TEXT NOT NULL,
            value         TEXT NOT NULL,
            unit          TEXT,
            start         TEXT NOT NULL,
            end_at        TEXT NOT NULL,
            issuer        TEXT NOT NULL,
            issued        TEXT NOT NULL,
            status        TEXT NOT NULL,
            delivered     TEXT,
            answer_idx    INTEGER,
            answer_status TEXT,
            answer_time   TEXT,
            answer_signer TEXT
        );
        CREATE INDEX setpoints_by_producer ON setpoints (producer, id);
        CREATE INDEX setpoints_by_status ON setpoints (status, idx);
        """,
    )


def _node_state(db: sqlite3.Connection) -> None:
    """What the nodes share (keystores, the contracts' addresses), their leases, and
    the leaves queued for the sequencer by the nodes that do not sequence."""
    _run_script(
        db,
        """
        CREATE TABLE node_state (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE leases (
            name    TEXT PRIMARY KEY,
            holder  TEXT NOT NULL,
            token   INTEGER NOT NULL,
            expires REAL NOT NULL
        );
        CREATE TABLE log_queue (
            id   INTEGER PRIMARY KEY AUTOINCREMENT,
            log  TEXT NOT NULL,
            kind TEXT NOT NULL,
            ref  INTEGER,
            leaf BLOB NOT NULL
        );
        """,
    )


def _lifecycle(db: sqlite3.Connection) -> None:
    """The hot window (issue 17): live readings counted per log and measurement day on
    write (the archiver and the dashboard never scan readings to find days); an index
    on measurement time (a day's readings by range) and on each reading's message (is a
    message still needed?); the archive files; and the payloads archived messages
    claimed, so a payload delivered again after its message was archived is still
    stored only once."""
    _run_script(
        db,
        """
        CREATE TABLE live_days (
            log      TEXT NOT NULL,
            day      TEXT NOT NULL,
            readings INTEGER NOT NULL,
            PRIMARY KEY (log, day)
        ) WITHOUT ROWID;
        INSERT INTO live_days (log, day, readings)
            SELECT log, substr(time, 1, 10), COUNT(*) FROM readings
            GROUP BY log, substr(time, 1, 10);
        CREATE INDEX readings_by_time ON readings (log, time);
        CREATE INDEX readings_by_message ON readings (message_id);
        CREATE INDEX rejections_by_message ON rejections (message_id);
        CREATE TABLE archives (
            log             TEXT NOT NULL,
            day             TEXT NOT NULL,
            part            INTEGER NOT NULL,
            file            TEXT NOT NULL,
            sha3            BLOB NOT NULL,
            bytes           INTEGER NOT NULL,
            readings        INTEGER NOT NULL,
            messages        INTEGER NOT NULL,
            first_index     INTEGER NOT NULL,
            last_index      INTEGER NOT NULL,
            first_id        INTEGER NOT NULL,
            last_id         INTEGER NOT NULL,
            checkpoint_size INTEGER NOT NULL,
            status          TEXT NOT NULL,
            created         TEXT NOT NULL,
            restored        TEXT,
            PRIMARY KEY (log, day, part)
        ) WITHOUT ROWID;
        CREATE TABLE archived_once (
            producer TEXT NOT NULL,
            digest   TEXT NOT NULL,
            PRIMARY KEY (digest, producer)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _base,
    _heads_and_indices,
    _setpoints,
    _node_state,
    _lifecycle,
)
"""Migration N is MIGRATIONS[N - 1]; append, never edit one that has shipped."""


def migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations `db` lacks, each in its own transaction; the version now."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " applied TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    for version, step in enumerate(MIGRATIONS, start=1):
        db.execute("BEGIN IMMEDIATE")
        try:
            done = db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone()
            if done is None:
                step(db)
                db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return len(MIGRATIONS)
