"""The Shared Customer Database on SQLite (WAL), the embedded default.

One connection per thread: the ingest writer, the API workers and the broker each get
their own. Writes come in batches (one transaction per batch of messages, never per
reading) and are fsynced on commit, so a committed reading survives kill -9.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from platone_bal.domain.audit import AUDIT_LOG, AuditEntry
from platone_bal.domain.checkpoint import Anchor, Checkpoint, SignedCheckpoint
from platone_bal.domain.decisions import Decision
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.grants import Grant, GrantStatus, Slice
from platone_bal.domain.merkle import SHA3_256, Frontier, NodeReader
from platone_bal.domain.messages import MessageRecord, SaveResult
from platone_bal.domain.readings import format_time, parse_time
from platone_bal.domain.users import Client, Role, Scope, User
from platone_bal.ports import (
    MAX_ROW_ID,
    RawRecord,
    ReadingQuery,
    RejectionQuery,
    StoredDecision,
    StoredReading,
    StoredRejection,
    StoreUnavailable,
    UserExists,
)

SCHEMA = """
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

_CLIENT_COLUMNS = "client_id, name, username, scopes, secret_hash, disabled, token_version"
_USER_COLUMNS = "username, role, password_hash, wallet, disabled, token_version"
_ADDED_COLUMNS = (("users", "token_version"), ("clients", "token_version"))
"""Columns later versions added: a database made before them gets them at open, as
`INTEGER NOT NULL DEFAULT 0` (every user and client starts at token version 0)."""
_CHECKPOINT_COLUMNS = "log, size, root, time, signature, signer"
_ANCHOR_COLUMNS = "id, log, size, root, chain_id, contract, tx, block, time"

_READING_COLUMNS = (
    "r.id, r.log, r.idx, r.producer, r.owner, r.device, r.time, r.measurand, r.value,"
    " r.unit, r.attrs, r.format, r.received, m.digest"
)


def _is_row_id(value: int) -> bool:
    """Whether SQLite can hold `value` as an id at all: asked for a larger one (a URL's
    id of 2^64), the answer is "no such row", not an OverflowError."""
    return -MAX_ROW_ID - 1 <= value <= MAX_ROW_ID


_READING_RAW = (
    "log", "producer", "owner", "device", "time", "measurand", "value", "unit", "attrs",
    "format", "received", "message", "message_id", "message_size", "payload_length",
)  # fmt: skip
"""Keys of a reading's RawRecord.columns, in the order `raw_records` selects them."""
_AUDIT_RAW = ("time", "who", "action", "producers")

_IN_CHUNK = 500


def _set_wal(connection: sqlite3.Connection, patience: float = 10.0) -> None:
    """WAL mode on a new connection. Right after a restart, while the first connection
    recovers the WAL, SQLite answers this pragma "database is locked" at once, without
    waiting for the busy timeout (seen: 500s on the first requests); so wait here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


"""Values per `IN (...)` list, well below SQLite's limit on bound parameters."""
_T = TypeVar("_T")


def _operational_errors_as_unavailable(cls: type[_T]) -> type[_T]:
    """Every public method raises `StoreUnavailable` where SQLite raises
    OperationalError (locked, I/O error, disk full), so callers can tell a store fault
    (retry) from a data fault (reject) without knowing SQLite."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except sqlite3.OperationalError as error:
                raise StoreUnavailable(f"SQLite: {error}") from error

        return translated

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, wrap(member))
    return cls


@_operational_errors_as_unavailable
class SqliteStore:
    """Store port on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # owner only, also for a file made by an earlier version; SQLite gives its -wal
        # and -shm files the database file's mode
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists():
                file.chmod(0o600)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._connection().executescript(SCHEMA)
        self._add_missing_columns()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            _set_wal(connection)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _add_missing_columns(self) -> None:
        """Bring a database an older version made up to SCHEMA (CREATE TABLE IF NOT
        EXISTS leaves an existing table as it was)."""
        with self._transaction() as db:
            for table, column in _ADDED_COLUMNS:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(
                        f"ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                    )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # users

    def add_user(self, user: User, keystore: str) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO users (username, role, password_hash, wallet, keystore, disabled)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        user.username,
                        user.role.value,
                        user.password_hash,
                        user.wallet,
                        keystore,
                        int(user.disabled),
                    ),
                )
        except sqlite3.IntegrityError:
            raise UserExists(f"user {user.username!r} exists") from None

    def get_user(self, username: str) -> User | None:
        query = f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?"  # noqa: S608
        row = self._connection().execute(query, (username,)).fetchone()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        rows = self._connection().execute(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY username"  # noqa: S608
        )
        return [_user(row) for row in rows]

    def update_user(
        self, username: str, *, disabled: bool | None = None, password_hash: str | None = None
    ) -> bool:
        """Change a user's status or password hash; False when there is no such user."""
        with self._transaction() as db:
            found = db.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone()
            if disabled is not None:
                db.execute(
                    "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
                )
            if password_hash is not None:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    (password_hash, username),
                )
        return found is not None

    def revoke_user_tokens(self, username: str, *, clients: bool = False) -> bool:
        """End every token and dashboard session of a user (and, with `clients`, of its
        platform clients) by raising their token version; False when there is no such
        user. One transaction, so no token outlives a disable half-done."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE users SET token_version = token_version + 1 WHERE username = ?",
                (username,),
            )
            if clients:
                db.execute(
                    "UPDATE clients SET token_version = token_version + 1 WHERE username = ?",
                    (username,),
                )
        return cursor.rowcount > 0

    def revoke_client_tokens(self, client_id: str) -> bool:
        """End every token of a platform client; False when there is no such client."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE clients SET token_version = token_version + 1 WHERE client_id = ?",
                (client_id,),
            )
        return cursor.rowcount > 0

    def has_role(self, role: Role) -> bool:
        row = (
            self._connection()
            .execute("SELECT 1 FROM users WHERE role = ? LIMIT 1", (role.value,))
            .fetchone()
        )
        return row is not None

    # platform clients

    def add_client(self, client: Client) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO clients (client_id, name, username, scopes, secret_hash, disabled)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    client.client_id,
                    client.name,
                    client.username,
                    " ".join(sorted(client.scopes)),
                    client.secret_hash,
                    int(client.disabled),
                ),
            )

    def get_client(self, client_id: str) -> Client | None:
        query = f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE client_id = ?"  # noqa: S608
        row = self._connection().execute(query, (client_id,)).fetchone()
        return _client(row) if row else None

    def list_clients(self) -> list[Client]:
        rows = self._connection().execute(
            f"SELECT {_CLIENT_COLUMNS} FROM clients ORDER BY created, client_id"  # noqa: S608
        )
        return [_client(row) for row in rows]

    def disable_client(self, client_id: str) -> bool:
        """Disable a client for good; False when there is no such client."""
        with self._transaction() as db:
            cursor = db.execute("UPDATE clients SET disabled = 1 WHERE client_id = ?", (client_id,))
        return cursor.rowcount > 0

    # the access audit log

    def append_audit(self, entries: Sequence[AuditEntry]) -> int:
        """Append entries as leaves of bal-audit (rows and Merkle nodes in one
        transaction); returns the log's new size."""
        with self._transaction() as db:
            frontier = Frontier.load(SHA3_256, _Nodes(db, AUDIT_LOG), self._log_size(db, AUDIT_LOG))
            rows: list[tuple[Any, ...]] = []
            nodes: list[tuple[str, int, int, bytes]] = []
            for entry in entries:
                raw = entry.leaf_bytes()
                rows.append(
                    (
                        frontier.size,
                        format_time(entry.time),
                        entry.who,
                        entry.action,
                        " " + " ".join(entry.producers) + " ",
                        raw,
                    )
                )
                nodes.extend(
                    (AUDIT_LOG, level, index, value)
                    for level, index, value in frontier.append(SHA3_256.hash_leaf(raw))
                )
            db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO nodes (log, level, idx, hash) VALUES (?, ?, ?, ?)", nodes)
            return frontier.size

    def audit_entries(
        self, *, who: str | None = None, producer: str | None = None, after: int = -1,
        limit: int = 100,
    ) -> list[tuple[int, bytes]]:  # fmt: skip
        """(index, leaf bytes) of bal-audit after `after`, by `who` and/or concerning
        `producer` (either matches when both are given)."""
        clauses: list[str] = ["idx > ?"]
        params: list[Any] = [after]
        # `who` matches the user acting itself and through any of its platform clients
        by_who = "(who = ? OR substr(who, 1, ?) = ?)"
        if who is not None and producer is not None:
            clauses.append(f"({by_who} OR instr(producers, ?) > 0)")
            params += [who, len(who) + 5, f"{who} via ", f" {producer} "]
        elif who is not None:
            clauses.append(by_who)
            params += [who, len(who) + 5, f"{who} via "]
        elif producer is not None:
            clauses.append("instr(producers, ?) > 0")
            params.append(f" {producer} ")
        rows = self._connection().execute(
            f"SELECT idx, leaf FROM audit WHERE {' AND '.join(clauses)} ORDER BY idx LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [(int(index), bytes(leaf)) for index, leaf in rows]

    def audit_columns(self, after: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        rows = self._connection().execute(
            "SELECT idx, time, who, action, producers FROM audit WHERE idx > ? ORDER BY idx"
            " LIMIT ?",
            (after, limit),
        )
        return [
            (int(index), time, who, action, producers)
            for index, time, who, action, producers in rows
        ]

    # devices

    def add_device(self, device: Device) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        device.producer,
                        device.device_id,
                        device.kind.value,
                        device.public_key,
                        device.secret_hash,
                        format_time(device.created),
                        int(device.disabled),
                        device.chain_tx,
                    ),
                )
        except sqlite3.IntegrityError:
            raise UserExists(f"device {device.device_id!r} of {device.producer!r} exists") from None

    def get_device(self, producer: str, device_id: str) -> Device | None:
        query = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE producer = ? AND device_id = ?"  # noqa: S608
        row = self._connection().execute(query, (producer, device_id)).fetchone()
        return _device(row) if row else None

    def list_devices(self, producer: str | None = None) -> list[Device]:
        where, params = ("producer = ?", (producer,)) if producer else ("1", ())
        query = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE {where} ORDER BY producer, device_id"  # noqa: S608
        return [_device(row) for row in self._connection().execute(query, params)]

    def set_device_chain_tx(self, producer: str, device_id: str, tx: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE devices SET chain_tx = ? WHERE producer = ? AND device_id = ?",
                (tx, producer, device_id),
            )

    def disable_device(self, producer: str, device_id: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE devices SET disabled = 1 WHERE producer = ? AND device_id = ?",
                (producer, device_id),
            )
        return cursor.rowcount > 0

    # grants

    def add_grant(self, grant: Grant, decision: Decision) -> Grant:
        with self._transaction() as db:
            cursor = db.execute(
                f"INSERT INTO grants ({_GRANT_FIELDS}) VALUES ({', '.join('?' * 12)})",  # noqa: S608
                _grant_row(grant),
            )
            assert cursor.lastrowid is not None
            grant = replace(grant, id=cursor.lastrowid)
            self._add_decision(db, replace(decision, grant_id=grant.id))
        return grant

    def save_grant(self, grant: Grant, decision: Decision | None = None) -> None:
        assignments = ", ".join(f"{name} = ?" for name in _GRANT_FIELDS.split(", "))
        with self._transaction() as db:
            db.execute(
                f"UPDATE grants SET {assignments} WHERE id = ?",  # noqa: S608
                (*_grant_row(grant), grant.id),
            )
            if decision is not None:
                self._add_decision(db, decision)

    @staticmethod
    def _add_decision(db: sqlite3.Connection, decision: Decision) -> None:
        db.execute(
            "INSERT INTO decisions (grant_id, status, decided_by, provider, consumer, topic,"
            " timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                decision.grant_id,
                decision.status.value,
                decision.decided_by,
                decision.provider,
                decision.consumer,
                decision.topic,
                decision.timestamp,
            ),
        )

    def user_keystore(self, username: str) -> str | None:
        row = (
            self._connection()
            .execute("SELECT keystore FROM users WHERE username = ?", (username,))
            .fetchone()
        )
        return str(row[0]) if row else None

    def pending_decisions(self, limit: int) -> list[StoredDecision]:
        return self._decision_rows("tx IS NULL AND error IS NULL ORDER BY id LIMIT ?", (limit,))

    def decision_recorded(
        self, decision_id: int, signature: str, signer: str, tx: str, block: int,
        chain_id: int, contract: str,
    ) -> None:  # fmt: skip
        with self._transaction() as db:
            db.execute(
                "UPDATE decisions SET signature = ?, signer = ?, tx = ?, block = ?,"
                " chain_id = ?, contract = ? WHERE id = ?",
                (signature, signer, tx, block, chain_id, contract, decision_id),
            )

    def decision_failed(self, decision_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE decisions SET error = ? WHERE id = ?", (error, decision_id))

    def decisions(self, grant_id: int) -> list[StoredDecision]:
        if not _is_row_id(grant_id):
            return []
        return self._decision_rows("grant_id = ? ORDER BY id", (grant_id,))

    def _decision_rows(self, where: str, params: tuple[Any, ...]) -> list[StoredDecision]:
        query = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE {where}"  # noqa: S608
        rows = self._connection().execute(query, params)
        return [
            StoredDecision(
                row[0],
                Decision(row[1], GrantStatus(row[2]), *row[3:8]),
                *row[8:],
            )
            for row in rows
        ]

    def grant(self, grant_id: int) -> Grant | None:
        if not _is_row_id(grant_id):
            return None
        rows = self._grant_rows("id = ?", (grant_id,))
        return rows[0] if rows else None

    def grants_of(self, username: str | None) -> list[Grant]:
        """Every grant `username` is a party to (None: every grant), newest first."""
        if username is None:
            return self._grant_rows("1 = 1", ())
        return self._grant_rows("consumer = ? OR producer = ?", (username, username))

    def accepted_grants(self, consumer: str | None = None) -> list[Grant]:
        """The accepted grants of `consumer` (None: of everyone); some may have expired."""
        if consumer is None:
            return self._grant_rows("status = 'accepted'", ())
        return self._grant_rows("consumer = ? AND status = 'accepted'", (consumer,))

    def _grant_rows(self, where: str, params: tuple[Any, ...]) -> list[Grant]:
        rows = self._connection().execute(
            f"SELECT id, {_GRANT_FIELDS} FROM grants WHERE {where} ORDER BY id DESC",  # noqa: S608
            params,
        )
        return [_grant(row) for row in rows]

    # ingest

    def save(self, records: Sequence[MessageRecord], log: str) -> SaveResult:
        stored = duplicates = reading_count = rejection_count = 0
        with self._transaction() as db:
            frontier = Frontier.load(SHA3_256, _Nodes(db, log), self._log_size(db, log))
            node_rows: list[tuple[str, int, int, bytes]] = []
            reading_rows: list[tuple[Any, ...]] = []
            rejection_rows: list[tuple[Any, ...]] = []
            for record in records:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO messages (channel, topic, producer, sender, digest,"
                    " size, payload, received, format, outcome, readings)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.channel.value,
                        record.topic,
                        record.producer,
                        record.sender,
                        record.digest,
                        record.size,
                        record.payload,
                        format_time(record.received),
                        record.format,
                        record.outcome.value,
                        len(record.readings),
                    ),
                )
                if cursor.rowcount == 0:
                    duplicates += 1
                    continue
                stored += 1
                message_id = cursor.lastrowid
                for item in record.readings:
                    leaf = item.leaf
                    reading_rows.append(
                        (
                            message_id,
                            log,
                            frontier.size,  # the index this leaf gets on append below
                            leaf["producer"],
                            leaf["owner"],
                            leaf["device"],
                            leaf["time"],
                            leaf["measurand"],
                            leaf["value"],
                            leaf["unit"],
                            json.dumps(leaf["attrs"], separators=(",", ":")),
                            leaf["source"]["format"],
                            leaf["source"]["received"],
                            item.leaf_bytes,
                        )
                    )
                    node_rows.extend(
                        (log, level, index, value)
                        for level, index, value in frontier.append(
                            SHA3_256.hash_leaf(item.leaf_bytes)
                        )
                    )
                rejection_rows.extend(
                    (message_id, record.producer, reason) for reason in record.rejections
                )
            db.executemany(
                "INSERT INTO readings (message_id, log, idx, producer, owner, device, time,"
                " measurand, value, unit, attrs, format, received, leaf)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                reading_rows,
            )
            db.executemany(
                "INSERT INTO rejections (message_id, producer, reason) VALUES (?, ?, ?)",
                rejection_rows,
            )
            db.executemany(
                "INSERT INTO nodes (log, level, idx, hash) VALUES (?, ?, ?, ?)", node_rows
            )
            reading_count, rejection_count = len(reading_rows), len(rejection_rows)
        return SaveResult(stored, duplicates, reading_count, rejection_count)

    # the Merkle log

    @staticmethod
    def _log_size(db: sqlite3.Connection, log: str) -> int:
        (size,) = db.execute(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM nodes WHERE log = ? AND level = 0", (log,)
        ).fetchone()
        return int(size)

    def log_size(self, log: str) -> int:
        """How many leaves the log holds."""
        return self._log_size(self._connection(), log)

    def nodes(self, log: str) -> NodeReader:
        """Stored perfect-subtree hashes of a log, for roots and proofs."""
        return _Nodes(self._connection(), log)

    def add_checkpoint(self, signed: SignedCheckpoint) -> None:
        c = signed.checkpoint
        with self._transaction() as db:
            db.execute(
                f"INSERT OR IGNORE INTO checkpoints ({_CHECKPOINT_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?)",
                (c.log, c.size, c.root, c.time, signed.signature, signed.signer),
            )

    def _checkpoint_where(self, where: str, params: tuple[Any, ...]) -> SignedCheckpoint | None:
        row = (
            self._connection()
            .execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE {where}", params)  # noqa: S608
            .fetchone()
        )
        return _checkpoint(row) if row else None

    def latest_checkpoint(self, log: str) -> SignedCheckpoint | None:
        return self._checkpoint_where("log = ? ORDER BY size DESC LIMIT 1", (log,))

    def checkpoint(self, log: str, size: int) -> SignedCheckpoint | None:
        return self._checkpoint_where("log = ? AND size = ?", (log, size))

    def checkpoints(self, log: str, after: int = 0, limit: int = 100) -> list[SignedCheckpoint]:
        rows = self._connection().execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints"  # noqa: S608
            " WHERE log = ? AND size > ? ORDER BY size LIMIT ?",
            (log, after, limit),
        )
        return [_checkpoint(row) for row in rows]

    def checkpoint_covering(self, log: str, index: int) -> SignedCheckpoint | None:
        anchored = self._checkpoint_where(
            "log = ? AND size > ? AND size IN (SELECT size FROM anchors WHERE log = ?)"
            " ORDER BY size LIMIT 1",
            (log, index, log),
        )
        if anchored is not None:
            return anchored
        return self._checkpoint_where(
            "log = ? AND size > ? ORDER BY size DESC LIMIT 1", (log, index)
        )

    def add_anchor(self, anchor: Anchor) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO anchors"
                " (log, size, root, chain_id, contract, tx, block, time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    anchor.log,
                    anchor.size,
                    anchor.root,
                    anchor.chain_id,
                    anchor.contract,
                    anchor.tx,
                    anchor.block,
                    anchor.time,
                ),
            )

    def _anchor_where(self, where: str, params: tuple[Any, ...]) -> Anchor | None:
        row = (
            self._connection()
            .execute(f"SELECT {_ANCHOR_COLUMNS} FROM anchors WHERE {where}", params)  # noqa: S608
            .fetchone()
        )
        return _anchor(row)[1] if row else None

    def anchor(self, log: str, size: int) -> Anchor | None:
        return self._anchor_where("log = ? AND size = ? ORDER BY id LIMIT 1", (log, size))

    def latest_anchor(self, log: str) -> Anchor | None:
        return next(iter(self.latest_anchors(log, 1)), None)

    def latest_anchors(self, log: str, limit: int) -> list[Anchor]:
        """The log's `limit` largest anchors, newest first (the explorer's table)."""
        rows = self._connection().execute(
            f"SELECT {_ANCHOR_COLUMNS} FROM anchors WHERE log = ? ORDER BY size DESC LIMIT ?",  # noqa: S608
            (log, limit),
        )
        return [_anchor(row)[1] for row in rows]

    def anchor_by_tx(self, tx: str) -> Anchor | None:
        return self._anchor_where("tx = ? ORDER BY id LIMIT 1", (tx.lower(),))

    def anchor_below(self, log: str, size: int) -> Anchor | None:
        return self._anchor_where("log = ? AND size < ? ORDER BY size DESC LIMIT 1", (log, size))

    def anchors(
        self, log: str | None = None, after: int = 0, limit: int = 100
    ) -> list[tuple[int, Anchor]]:
        where, params = ("id > ?", [after]) if log is None else ("id > ? AND log = ?", [after, log])
        rows = self._connection().execute(
            f"SELECT {_ANCHOR_COLUMNS} FROM anchors WHERE {where} ORDER BY id LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_anchor(row) for row in rows]

    # egress

    def egress_position(self, log: str) -> int:
        row = (
            self._connection()
            .execute("SELECT position FROM egress WHERE log = ?", (log,))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def set_egress_position(self, log: str, position: int) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO egress (log, position) VALUES (?, ?)"
                " ON CONFLICT (log) DO UPDATE SET position = excluded.position",
                (log, position),
            )

    # queries

    def reading(self, reading_id: int) -> StoredReading | None:
        if not _is_row_id(reading_id):
            return None
        rows = self._reading_rows("r.id = ?", [reading_id], 1)
        return rows[0] if rows else None

    def readings_in_log(self, log: str, start: int, limit: int) -> list[StoredReading]:
        return self._reading_rows("r.log = ? AND r.idx >= ?", [log, start], limit, "r.idx")

    def device_activity(self, producer: str, since: str) -> dict[str, tuple[str, int]]:
        """device -> (when its latest reading arrived, readings arrived since `since`);
        one pass over the producer's readings (the dashboard's device list)."""
        rows = self._connection().execute(
            "SELECT device, MAX(received), SUM(received >= ?) FROM readings"
            " WHERE producer = ? GROUP BY device",
            (since, producer),
        )
        return {device: (last, int(recent)) for device, last, recent in rows}

    def leaf_bytes(self, log: str, index: int) -> bytes | None:
        row = (
            self._connection()
            .execute("SELECT leaf FROM readings WHERE log = ? AND idx = ?", (log, index))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    def leaves(self, log: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._connection().execute(
            "SELECT idx, leaf FROM readings WHERE log = ? AND idx >= ? ORDER BY idx LIMIT ?",
            (log, start, limit),
        )
        return [(int(index), bytes(leaf)) for index, leaf in rows]

    def readings(self, query: ReadingQuery) -> list[StoredReading]:
        clauses: list[str] = ["r.id > ?"]
        params: list[Any] = [query.after]
        for column, value in (
            ("r.producer", query.producer),
            ("r.device", query.device),
            ("r.measurand", query.measurand),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            clauses.append("r.time >= ?")
            params.append(format_time(query.since))
        if query.until is not None:
            clauses.append("r.time < ?")
            params.append(format_time(query.until))
        if query.slices is not None:
            if not query.slices:
                return []
            alternatives = []
            for part in query.slices:
                where, values = _slice_clause(part)
                alternatives.append(where)
                params.extend(values)
            clauses.append("(" + " OR ".join(alternatives) + ")")
        return self._reading_rows(" AND ".join(clauses), params, query.limit)

    def _reading_rows(
        self, where: str, params: list[Any], limit: int, order: str = "r.id"
    ) -> list[StoredReading]:
        rows = self._connection().execute(
            f"SELECT {_READING_COLUMNS} FROM readings r JOIN messages m ON m.id = r.message_id"  # noqa: S608 (columns are constants)
            f" WHERE {where} ORDER BY {order} LIMIT ?",
            (*params, limit),
        )
        return [
            StoredReading(
                id=row[0],
                log=row[1],
                index=row[2],
                producer=row[3],
                owner=row[4],
                device=row[5],
                time=row[6],
                measurand=row[7],
                value=row[8],
                unit=row[9],
                attrs=json.loads(row[10]),
                format=row[11],
                received=row[12],
                message=row[13],
            )
            for row in rows
        ]

    def rejections(self, query: RejectionQuery) -> list[StoredRejection]:
        clauses: list[str] = ["j.id > ?"]
        params: list[Any] = [query.after]
        if query.producer is not None:
            clauses.append("j.producer = ?")
            params.append(query.producer)
        rows = self._connection().execute(
            "SELECT j.id, m.received, m.channel, m.topic, j.producer, m.sender, j.reason,"  # noqa: S608
            " m.digest, m.size, m.format FROM rejections j JOIN messages m ON m.id = j.message_id"
            f" WHERE {' AND '.join(clauses)}"
            f" ORDER BY j.id {'DESC' if query.newest_first else 'ASC'} LIMIT ?",
            (*params, query.limit),
        )
        return [StoredRejection(*row) for row in rows]

    def recorded(self, messages: Collection[tuple[str | None, str]]) -> set[tuple[str | None, str]]:
        wanted = set(messages)
        digests = sorted({digest for _, digest in wanted})
        found: set[tuple[str | None, str]] = set()
        db = self._connection()
        for start in range(0, len(digests), _IN_CHUNK):
            chunk = digests[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT producer, digest FROM messages WHERE digest IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update(
                (producer, digest) for producer, digest in rows if (producer, digest) in wanted
            )
        return found

    def payload(self, digest: str) -> bytes | None:
        """Raw bytes of a stored message, for inspection of rejections."""
        row = (
            self._connection()
            .execute("SELECT payload FROM messages WHERE digest = ? LIMIT 1", (digest,))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # `bal audit`: rows exactly as stored, any SQL type, nothing parsed

    def raw_records(self, log: str, start: int, limit: int) -> list[RawRecord]:
        db = self._connection()
        if log == AUDIT_LOG:
            rows = db.execute(
                "SELECT idx, leaf, time, who, action, producers FROM audit WHERE idx >= ?"
                " ORDER BY idx LIMIT ?",
                (start, limit),
            )
            return [
                RawRecord(index, leaf, dict(zip(_AUDIT_RAW, rest, strict=True)))
                for index, leaf, *rest in rows
            ]
        # LEFT JOIN: a reading whose message row is gone is still audited (and found out)
        rows = db.execute(
            "SELECT r.idx, r.leaf, r.log, r.producer, r.owner, r.device, r.time, r.measurand,"
            " r.value, r.unit, r.attrs, r.format, r.received, m.digest, m.id, m.size,"
            " length(m.payload) FROM readings r LEFT JOIN messages m ON m.id = r.message_id"
            " WHERE r.log = ? AND r.idx >= ? ORDER BY r.idx LIMIT ?",
            (log, start, limit),
        )
        return [
            RawRecord(index, leaf, dict(zip(_READING_RAW, rest, strict=True)))
            for index, leaf, *rest in rows
        ]

    def raw_nodes(self, log: str, level: int, start: int, stop: int) -> list[tuple[object, object]]:
        rows = self._connection().execute(
            "SELECT idx, hash FROM nodes WHERE log = ? AND level = ? AND idx >= ? AND idx < ?",
            (log, level, start, stop),
        )
        return [(index, value) for index, value in rows]

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
            f"SELECT {_ANCHOR_COLUMNS} FROM anchors WHERE log = ? AND id > ? ORDER BY id LIMIT ?",  # noqa: S608
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

    def message_reading_index(self, log: str, message_id: int) -> int | None:
        (index,) = (
            self._connection()
            .execute(
                "SELECT MIN(idx) FROM readings WHERE log = ? AND message_id = ?", (log, message_id)
            )
            .fetchone()
        )
        return index if isinstance(index, int) else None


class _Nodes:
    """NodeReader over the nodes table of one log."""

    def __init__(self, db: sqlite3.Connection, log: str) -> None:
        self._db = db
        self._log = log

    def node(self, level: int, index: int) -> bytes:
        row = self._db.execute(
            "SELECT hash FROM nodes WHERE log = ? AND level = ? AND idx = ?",
            (self._log, level, index),
        ).fetchone()
        if row is None:
            raise KeyError(f"log {self._log!r} has no node ({level}, {index})")
        return bytes(row[0])


def _user(row: tuple[Any, ...]) -> User:
    username, role, password_hash, wallet, disabled, token_version = row
    return User(
        username=username,
        role=Role(role),
        password_hash=password_hash,
        wallet=wallet,
        disabled=bool(disabled),
        token_version=token_version,
    )


def _client(row: tuple[Any, ...]) -> Client:
    client_id, name, username, scopes, secret_hash, disabled, token_version = row
    return Client(
        client_id,
        name,
        username,
        frozenset(Scope(scope) for scope in scopes.split()),
        secret_hash,
        bool(disabled),
        token_version,
    )


def _slice_clause(part: Slice) -> tuple[str, list[Any]]:
    """SQL condition (on readings `r`) for one slice of a producer's data."""
    clauses, values = ["r.producer = ?"], [part.producer]
    for column, names in (("r.device", part.devices), ("r.measurand", part.measurands)):
        if names is not None:
            clauses.append(f"{column} IN ({', '.join('?' * len(names))})" if names else "0")
            values.extend(sorted(names))
    if part.since is not None:
        clauses.append("r.time >= ?")
        values.append(format_time(part.since))
    if part.until is not None:
        clauses.append("r.time < ?")
        values.append(format_time(part.until))
    return "(" + " AND ".join(clauses) + ")", values


_DEVICE_COLUMNS = "producer, device_id, kind, public_key, secret_hash, created, disabled, chain_tx"


def _device(row: tuple[Any, ...]) -> Device:
    producer, device_id, kind, public_key, secret_hash, created, disabled, chain_tx = row
    return Device(
        producer,
        device_id,
        DeviceKind(kind),
        parse_time(created),
        public_key,
        secret_hash,
        bool(disabled),
        chain_tx,
    )


_DECISION_COLUMNS = (
    "id, grant_id, status, decided_by, provider, consumer, topic, timestamp,"
    " signature, signer, tx, block, chain_id, contract, error"
)
_GRANT_FIELDS = (
    "producer, consumer, status, devices, measurands, since, until, expires, created,"
    " modified, reason, decided_by"
)


def _names(values: frozenset[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(values))


def _time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _grant_row(grant: Grant) -> tuple[Any, ...]:
    scope = grant.scope
    return (
        scope.producer,
        grant.consumer,
        grant.status.value,
        _names(scope.devices),
        _names(scope.measurands),
        _time_or_none(scope.since),
        _time_or_none(scope.until),
        _time_or_none(grant.expires),
        format_time(grant.created),
        format_time(grant.modified),
        grant.reason,
        grant.decided_by,
    )


def _grant(row: tuple[Any, ...]) -> Grant:
    (grant_id, producer, consumer, status, devices, measurands, since, until, expires,
     created, modified, reason, decided_by) = row  # fmt: skip

    def names(text: str | None) -> frozenset[str] | None:
        return None if text is None else frozenset(json.loads(text))

    def moment(text: str | None) -> datetime | None:
        if text is None:
            return None
        year, dash, rest = text.partition("-")
        if dash and year.isdigit() and len(year) < 4:  # written before years were padded
            text = f"{int(year):04d}-{rest}"
        return parse_time(text)

    return Grant(
        id=grant_id,
        consumer=consumer,
        scope=Slice(producer, names(devices), names(measurands), moment(since), moment(until)),
        status=GrantStatus(status),
        created=parse_time(created),
        modified=parse_time(modified),
        expires=moment(expires),
        reason=reason,
        decided_by=decided_by,
    )


def _checkpoint(row: tuple[Any, ...]) -> SignedCheckpoint:
    log, size, root, time, signature, signer = row
    return SignedCheckpoint(Checkpoint(log, size, bytes(root), time), signature, signer)


def _anchor(row: tuple[Any, ...]) -> tuple[int, Anchor]:
    row_id, log, size, root, chain_id, contract, tx, block, time = row
    return row_id, Anchor(log, size, bytes(root), chain_id, contract, tx, block, time)
