"""The two stores side by side, SQLite and PostgreSQL, each against a baseline of its own
engine measured in the same run.

Durability as deployed: SQLite in WAL mode with synchronous=FULL (as the store opens
it), and a throwaway PostgreSQL 15 cluster (tests/postgres_cluster.py) with fsync on and
synchronous_commit on, so every commit on either waits for its data on disk.

1. ingest: the simulated fleet's payloads published at full speed (QoS 1) to one
   Mosquitto and counted by a bare subscriber (the raw broker delivery), then the same
   payloads through that broker into a node on each store (BAL_STORE=sqlite,
   BAL_STORE=postgres), timed until every message is committed; each node twice in
   ABBA order and the raw delivery before and after, the best of each compared (the
   machine may be shared);
2. log append: the fleet's payloads decoded once (that rate is reported too), then
   written in batches of `--batch-rounds` fleet rounds (3: 600 messages, about the
   batches ingest made in step 1) with `Recorder.save` (messages, readings, leaves, Merkle
   nodes, log head, device counters in one transaction, a checkpoint signed after each,
   untimed), against the same readings' rows written into a plain table with one index
   on (device, time), one transaction per batch (executemany on SQLite, COPY on
   PostgreSQL); then the first batches again under cProfile;
3. proofs: `proof_bundle` for random readings of that log (at most PROOF_BUDGET seconds),
   against looking the same readings up;
4. audit: `audit_log` (no chain) of that log with its pages checked by AUDIT_WORKERS
   processes, as `bal audit` runs, and in one process alone, against the reads it
   makes alone (best of AUDIT_RUNS each); then each part of its work timed alone in
   one process (best of AUDIT_RUNS), and one more audit in one process under cProfile,
   to say where the time goes;
5. queries: with `--readings` stored in total (many devices over many days), one
   device-day (8,640 readings of one measurand, one every 10 s) and one device-hour
   (360) through the store's `readings()` and `series()`, against a plain table with
   an index on (device, time) holding the same rows, on the same engine; then the
   plans and the database's share of the device-day queries. The bulk is written with
   SQL in the store's own schema (well-formed leaves with placeholder salts and
   digests, in a log of its own whose Merkle nodes are not written), the store's
   secondary indexes on readings made again after it as a bulk load would; the queried
   device's day goes through `IngestService.record` and `Recorder.save`, a minute at a
   time between the other devices' rows, as a node's batches would interleave it. Both
   stores are filled at once (two threads), then queried one after the other.

Writes a JSON report (default benchmarks/results/storage.json) with a summary first.
Needs Mosquitto and the PostgreSQL server binaries. Run:
`.venv/bin/python benchmarks/storage.py` (about 15 minutes on 2 cores), or a tiny
workload: `--rounds 3 --meters 10 --pmus 5 --append-readings 2000 --proofs 20
--readings 20000 --days 2 --repeats 3`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from eth_account import Account
from tests.integration.mosquitto import Mosquitto
from tests.integration.nodes import NodeThread
from tests.postgres_cluster import PostgresCluster, started_cluster

from benchmarks.certify import Window, decode_workload, rate, timed
from benchmarks.ingest import PRODUCER, PUBLISHERS, SERVICE, baseline, payloads, publish_all
from platone_bal.adapters.postgres import PostgresStore
from platone_bal.adapters.postgres.base import number, rfc3339
from platone_bal.adapters.postgres.partitions import ensure_days
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.checkpoint import verify_signature
from platone_bal.domain.leaf import message_digest
from platone_bal.domain.messages import Channel, MessageRecord
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import Role, producer_topic
from platone_bal.ports import ReadingQuery, SeriesQuery, Store, UnitOfWork
from platone_bal.ports.records import LeafRow
from platone_bal.services.audit import AuditReport, Pages, StoreOpener, audit_log
from platone_bal.services.audit.match import LeafMatcher
from platone_bal.services.audit.pages import all_stored, leaf_hashes, subtrees
from platone_bal.services.audit.rows import PAGE
from platone_bal.services.certification import proof_bundle
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.recorder import Recorder
from platone_bal.services.users import UserService
from platone_bal.simulate import Fleet

LOG = "bal-main"
BULK_LOG = "bal-bulk"
STEP = 10
"""Seconds between two readings of a device (the queried device-day: 8,640 of them)."""
DAY_STEPS = 86_400 // STEP
MEASURAND = "frequency"
QUERIED_DEVICE = "dev00000"
INTERLEAVE_STEPS = 6
"""The queried device's day is written a minute (6 readings) at a time between the
other devices' rows of that minute."""
DAY_POINTS, HOUR_POINTS = 288, 60
"""Buckets of the series queries: 5 minutes over a day, 1 minute over an hour."""
TARGETS = {
    "ingest_postgres_vs_sqlite": 0.8,
    "audit_readings_per_s": 100_000,
    "device_day_p95_ms": 50.0,
}


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/max of latencies in seconds, as milliseconds."""
    return {
        "queries": len(samples),
        "p50_ms": 1000 * percentile(samples, 0.5),
        "p95_ms": 1000 * percentile(samples, 0.95),
        "max_ms": 1000 * max(samples),
    }


# the two engines


PLAIN_COLUMNS = (
    "producer, owner, device, time, measurand, value, unit, attrs, format, received, message"
)


@dataclass(frozen=True)
class PlainRow:
    """A reading as a plain table holds it: its columns without the log."""

    producer: str
    owner: str
    device: str
    time: str
    measurand: str
    value: str
    unit: str | None
    attrs: str
    format: str
    received: str
    message: str
    leaf: bytes

    @classmethod
    def of(cls, record: MessageRecord) -> list[PlainRow]:
        return [
            cls(
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
                record.digest,
                item.leaf_bytes,
            )
            for item in record.readings
            for leaf in (item.leaf,)
        ]


@dataclass(frozen=True)
class BulkChunk:
    """Steps [first, stop) of the bulk, devices [low, high) at each step; one message
    per step, so `messages` ids from `message_base` and log indices from `index_base`."""

    first: int
    stop: int
    low: int
    high: int
    index_base: int

    @property
    def per_step(self) -> int:
        return self.high - self.low

    @property
    def rows(self) -> int:
        return (self.stop - self.first) * self.per_step


class Engine(Protocol):
    """What a stage needs of a backend: stores, nodes, and the raw baselines."""

    name: str

    def store(self, label: str) -> Store: ...

    def node(self, broker: Mosquitto, label: str) -> tuple[NodeThread, Callable[[], int]]:
        """A node on this backend, and a count of the messages it has committed."""
        ...

    def plain_append(self, label: str, batches: list[list[PlainRow]]) -> float:
        """Seconds to write the batches into a plain indexed table, one transaction each."""
        ...

    def bulk_open(self, label: str, epoch: int, devices: int, days: list[date]) -> None: ...

    def bulk_write(self, chunk: BulkChunk, owner: str) -> None: ...

    def plain_copy(self, log: str, start: int, stop: int, since: datetime, until: datetime) -> None:
        """Copy readings [start, stop) of `log`, measured in [since, until), into the plain
        table."""
        ...

    def bulk_close(self) -> dict[str, Any]: ...

    def plain_readings(
        self, device: str, measurand: str, since: datetime, until: datetime
    ) -> list[tuple[Any, ...]]: ...

    def plain_series(
        self, device: str, measurand: str, since: datetime, until: datetime, points: int
    ) -> list[tuple[Any, ...]]: ...

    def describe(self) -> dict[str, Any]: ...


def _bulk_leaf(concat: Callable[..., str], owner: str, salt: str) -> str:
    """SQL for a bulk row's leaf: the shape (and size) of a real one-reading PMU leaf."""
    return concat(
        '\'{"attrs":{"component":"BUS1"},"device":"\'',
        "name",
        f'\'","log":"{BULK_LOG}","measurand":"{MEASURAND}","owner":"{owner}",'
        f'"producer":"{PRODUCER[0]}","salt":"\'',
        salt,
        '\'","source":{"format":"pmu-json","message":"\'',
        "digest",
        '\'","received":"\'',
        "received",
        '\'"},"time":"\'',
        "time",
        '\'","unit":null,"v":1,"value":"\'',
        "value",
        "'\"}'",
    )


class SqliteEngine:
    """SQLite files in the work directory, one per label."""

    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._fill: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    def path(self, label: str) -> Path:
        (self.workdir / "sqlite").mkdir(exist_ok=True)
        return self.workdir / "sqlite" / f"{label}.sqlite3"

    def store(self, label: str) -> Store:
        return SqliteStore(self.path(label))

    def node(self, broker: Mosquitto, label: str) -> tuple[NodeThread, Callable[[], int]]:
        data_dir = self.workdir / "sqlite" / label
        node = broker.bal_node(data_dir, mqtt_client_id=f"bench-{label}")
        database = sqlite3.connect(data_dir / "scd.sqlite3")

        def count() -> int:
            return int(database.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

        return node, count

    def plain_append(self, label: str, batches: list[list[PlainRow]]) -> float:
        db = sqlite3.connect(self.path(label), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            f"CREATE TABLE plain (id INTEGER PRIMARY KEY, {PLAIN_COLUMNS}, leaf BLOB NOT NULL)"
        )
        db.execute("CREATE INDEX plain_by_device ON plain (device, time)")
        rows = [[tuple(vars(row).values()) for row in batch] for batch in batches]
        started = time.perf_counter()
        for batch in rows:
            db.execute("BEGIN")
            db.executemany(
                f"INSERT INTO plain ({PLAIN_COLUMNS}, leaf) VALUES ({', '.join('?' * 12)})",  # noqa: S608 (constants)
                batch,
            )
            db.execute("COMMIT")
        seconds = time.perf_counter() - started
        db.close()
        return seconds

    # the bulk of the query stage

    def bulk_open(self, label: str, epoch: int, devices: int, days: list[date]) -> None:
        self._label, self._epoch = label, epoch
        db = self._fill = sqlite3.connect(self.path(label), isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")  # filling; what is measured is the reads
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("CREATE TEMP TABLE bulk_devices (d INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.executemany(
            "INSERT INTO bulk_devices VALUES (?, ?)", [(d, f"dev{d:05d}") for d in range(devices)]
        )
        db.execute(f"CREATE TABLE plain (id INTEGER PRIMARY KEY, {PLAIN_COLUMNS})")
        # the store's indexes on readings but the one the copy reads by, (log, idx), are
        # made again once the bulk is in: as a bulk load does, the same definitions
        self._deferred = [
            "CREATE INDEX plain_by_device ON plain (device, time)",
            *(
                sql
                for (sql,) in db.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'index'"
                    " AND tbl_name = 'readings' AND sql IS NOT NULL"
                )
            ),
        ]
        for sql in self._deferred[1:]:
            db.execute(f"DROP INDEX {sql.split()[2]}")

    def bulk_write(self, chunk: BulkChunk, owner: str) -> None:
        db = self._fill
        assert db is not None
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
        at = "strftime('%Y-%m-%dT%H:%M:%S', :epoch + s * 10{}, 'unixepoch') || '.000000Z'"
        steps = (  # each step's values once, then crossed with the devices
            "WITH RECURSIVE n (s) AS (SELECT :first UNION ALL SELECT s + 1 FROM n"  # noqa: S608 (constants)
            " WHERE s + 1 < :stop), steps AS MATERIALIZED (SELECT s,"
            f" {at.format('')} AS time, {at.format(' + 1')} AS received,"
            " printf('%064x', s) AS digest, lower(hex(randomblob(16))) AS salt FROM n)"
        )
        params = {
            "first": chunk.first,
            "stop": chunk.stop,
            "low": chunk.low,
            "high": chunk.high,
            "n": chunk.per_step,
            "epoch": self._epoch,
            "messages": last + 1 - chunk.first,
            "base": chunk.index_base,
            "owner": owner,
            "producer": PRODUCER[0],
        }
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO messages (id, channel, topic, producer, sender, digest, size, payload,"  # noqa: S608 (constants)
            f" received, format, outcome, readings) {steps}"
            " SELECT :messages + s, 'mqtt', 'platone/' || :producer || '/bulk', :producer,"
            " :producer, digest, 64, randomblob(64), received, 'pmu-json', 'accepted', :n"
            " FROM steps",
            params,
        )
        leaf = _bulk_leaf(lambda *parts: " || ".join(parts), owner, "salt")
        db.execute(
            "INSERT INTO readings (message_id, log, idx, producer, owner, device, time,"  # noqa: S608 (constants)
            f" measurand, value, unit, attrs, format, received, leaf) {steps},"
            " r AS (SELECT s, d, name, digest, salt, time, received,"
            " printf('%.4f', 50 + ((s * 7 + d * 13) % 401 - 200) / 10000.0) AS value"
            " FROM steps CROSS JOIN bulk_devices WHERE d >= :low AND d < :high)"
            f" SELECT :messages + s, '{BULK_LOG}', :base + (s - :first) * :n + d - :low,"
            f" :producer, :owner, name, time, '{MEASURAND}', value, NULL,"
            f" '{{\"component\":\"BUS1\"}}', 'pmu-json', received, CAST({leaf} AS BLOB) FROM r",
            params,
        )
        db.execute("COMMIT")

    def plain_copy(self, log: str, start: int, stop: int, since: datetime, until: datetime) -> None:
        db = self._fill
        assert db is not None
        db.execute("BEGIN")
        db.execute(
            f"INSERT INTO plain (id, {PLAIN_COLUMNS}) SELECT r.id, r.producer, r.owner,"  # noqa: S608
            " r.device, r.time, r.measurand, r.value, r.unit, r.attrs, r.format, r.received,"
            " m.digest FROM readings r JOIN messages m ON m.id = r.message_id"
            " WHERE r.log = ? AND r.idx >= ? AND r.idx < ?",
            (log, start, stop),
        )
        db.execute("COMMIT")

    def bulk_close(self) -> dict[str, Any]:
        db = self._fill
        assert db is not None
        started = time.perf_counter()
        for sql in self._deferred:
            db.execute(sql)
        indexed = time.perf_counter() - started
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        self._fill = None
        return {
            "file_bytes": self.path(self._label).stat().st_size,
            "indexes_made_after_the_bulk": [sql.split()[2] for sql in self._deferred],
            "index_seconds": indexed,
        }

    @property
    def _query(self) -> sqlite3.Connection:
        """The baseline's connection (made by the thread that queries)."""
        if self._reader is None:
            self._reader = sqlite3.connect(self.path(self._label))
        return self._reader

    def plain_readings(
        self, device: str, measurand: str, since: datetime, until: datetime
    ) -> list[tuple[Any, ...]]:
        return self._query.execute(
            f"SELECT id, {PLAIN_COLUMNS} FROM plain WHERE producer = ? AND device = ?"  # noqa: S608
            " AND measurand = ? AND time >= ? AND time < ? ORDER BY time LIMIT 10000",
            (PRODUCER[0], device, measurand, format_time(since), format_time(until)),
        ).fetchall()

    def plain_series(
        self, device: str, measurand: str, since: datetime, until: datetime, points: int
    ) -> list[tuple[Any, ...]]:
        width = (until - since).total_seconds() / points
        start = format_time(since)
        return self._query.execute(
            "SELECT CAST((julianday(time) - julianday(?)) * 86400.0 / ? AS INTEGER) AS b,"
            " COUNT(*), MIN(CAST(value AS REAL)), MAX(CAST(value AS REAL)),"
            " AVG(CAST(value AS REAL)), MAX(time || ' ' || value) FROM plain"
            " WHERE producer = ? AND device = ? AND measurand = ? AND time >= ? AND time < ?"
            " GROUP BY b ORDER BY b",
            (start[:26], width, PRODUCER[0], device, measurand, start, format_time(until)),
        ).fetchall()

    def describe(self) -> dict[str, Any]:
        return {
            "version": sqlite3.sqlite_version,
            "settings": "journal_mode=WAL, synchronous=FULL (as the store opens it)",
        }


class PostgresEngine:
    """Databases of one PostgreSQL cluster, one per label."""

    name = "postgres"

    def __init__(self, cluster: PostgresCluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.urls: dict[str, str] = {}
        self._fill: psycopg.Connection[tuple[Any, ...]] | None = None

    def url(self, label: str) -> str:
        if label not in self.urls:
            self.urls[label] = self.cluster.create_database()
        return self.urls[label]

    def connect(self, label: str) -> psycopg.Connection[tuple[Any, ...]]:
        # never prepared: a generic plan of `id > $1` scans every partition
        conn = psycopg.connect(self.url(label), autocommit=True, prepare_threshold=None)
        conn.execute("SET TIME ZONE 'UTC'")
        return conn

    def store(self, label: str) -> Store:
        return PostgresStore(self.url(label))

    def node(self, broker: Mosquitto, label: str) -> tuple[NodeThread, Callable[[], int]]:
        node = broker.bal_node(
            self.workdir / "postgres" / label,
            mqtt_client_id=f"bench-{label}",
            store="postgres",
            database_url=self.url(label),
        )
        database = self.connect(label)

        def count() -> int:
            row = database.execute("SELECT COUNT(*) FROM messages").fetchone()
            return int(row[0]) if row else 0

        return node, count

    def plain_append(self, label: str, batches: list[list[PlainRow]]) -> float:
        conn = self.connect(label)
        conn.execute(
            "CREATE TABLE plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " time_at timestamptz NOT NULL, number double precision NOT NULL,"
            " producer text, owner text, device text, time text, measurand text, value text,"
            " unit text, attrs text, format text, received text, message text, leaf bytea)"
        )
        conn.execute("CREATE INDEX plain_by_device ON plain (device, time_at)")
        rows = [
            [(rfc3339(row.time), number(row.value), *vars(row).values()) for row in batch]
            for batch in batches
        ]
        types = ["timestamptz", "float8", *["text"] * 11, "bytea"]
        started = time.perf_counter()
        for batch in rows:
            with (
                conn.transaction(),
                conn.cursor() as cursor,
                cursor.copy(
                    f"COPY plain (time_at, number, {PLAIN_COLUMNS}, leaf)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(types)
                for values in batch:
                    copy.write_row(values)
        seconds = time.perf_counter() - started
        conn.close()
        return seconds

    # the bulk of the query stage

    def bulk_open(self, label: str, epoch: int, devices: int, days: list[date]) -> None:
        self._label, self._epoch = label, epoch
        conn = self._fill = self.connect(label)
        conn.execute("SET synchronous_commit = off")  # filling; what is measured is the reads
        with conn.transaction():
            for table in ("messages", "readings"):
                ensure_days(conn, table, days)
        conn.execute(
            "CREATE TABLE plain (id bigint PRIMARY KEY, time_at timestamptz NOT NULL,"
            " number double precision NOT NULL, producer text, owner text, device text,"
            " time text, measurand text, value text, unit text, attrs text, format text,"
            " received text, message text)"
        )
        # the store's indexes on readings but the key and the one the copy reads by,
        # (log, idx), are made again once the bulk is in: the same definitions, on every
        # partition (as on the parent, not ON ONLY it)
        self._deferred = [
            "CREATE INDEX plain_by_device ON plain (device, time_at)",
            *(
                str(sql).replace(" ON ONLY ", " ON ")
                for (sql,) in conn.execute(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
                    " AND tablename = 'readings' AND indexname NOT IN"
                    " ('readings_pkey', 'readings_by_log')"
                )
            ),
        ]
        for sql in self._deferred[1:]:
            conn.execute(f"DROP INDEX {sql.split()[2]}")

    def bulk_write(self, chunk: BulkChunk, owner: str) -> None:
        conn = self._fill
        assert conn is not None
        count = chunk.stop - chunk.first
        text = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        steps = (  # each step's values once, then crossed with the devices
            "WITH t AS MATERIALIZED (SELECT s, at, received_at, digest, md5(digest) AS salt,"  # noqa: S608 (constants)
            f" {text.format('at')} AS time, {text.format('received_at')} AS received"
            " FROM generate_series(%(first)s::bigint, %(last)s) s CROSS JOIN LATERAL"
            " (SELECT to_timestamp(%(epoch)s + s * 10) AS at,"
            " to_timestamp(%(epoch)s + s * 10 + 1) AS received_at,"
            " lpad(to_hex(s), 64, '0') AS digest) x)"
        )
        with conn.transaction():
            row = conn.execute("SELECT nextval('messages_id_seq')").fetchone()
            assert row is not None
            first_id = int(row[0])
            conn.execute("SELECT setval('messages_id_seq', %s)", (first_id + count - 1,))
            params = {
                "first": chunk.first,
                "last": chunk.stop - 1,
                "low": chunk.low,
                "high": chunk.high - 1,
                "n": chunk.per_step,
                "epoch": self._epoch,
                "messages": first_id - chunk.first,
                "base": chunk.index_base,
                "owner": owner,
                "producer": PRODUCER[0],
            }
            conn.execute(
                "INSERT INTO messages (id, received_at, received, channel, topic, producer,"  # noqa: S608 (constants)
                f" sender, digest, size, payload, format, outcome, readings) {steps}"
                " SELECT %(messages)s + s, received_at, received, 'mqtt',"
                " 'platone/' || %(producer)s || '/bulk', %(producer)s, %(producer)s, digest,"
                " 64, decode(salt || md5(received), 'hex'), 'pmu-json', 'accepted', %(n)s"
                " FROM t",
                params,
            )
            leaf = _bulk_leaf(lambda *parts: f"concat({', '.join(parts)})", owner, "salt")
            conn.execute(
                "INSERT INTO readings (time_at, message_id, message_at, message, log, idx,"  # noqa: S608 (constants)
                " producer, owner, device, time, measurand, value, number, unit, attrs,"
                f" format, received, leaf) {steps},"
                " v AS MATERIALIZED (SELECT array_agg(to_char(50 + (k - 200) / 10000.0,"
                " 'FM90.0000') ORDER BY k) AS texts FROM generate_series(0, 400) k)"
                f" SELECT at, %(messages)s + s, received_at, digest, '{BULK_LOG}',"
                " %(base)s + (s - %(first)s) * %(n)s + d - %(low)s, %(producer)s, %(owner)s,"
                f" name, time, '{MEASURAND}', value, value::float8, NULL,"
                f" '{{\"component\":\"BUS1\"}}', 'pmu-json', received,"
                f" convert_to({leaf.replace('%', '%%')}, 'UTF8') FROM t CROSS JOIN v"
                # depends on s, so the devices are the inner loop: rows in time order
                " CROSS JOIN LATERAL generate_series(%(low)s::integer + 0 * s::integer,"
                " %(high)s) d CROSS JOIN LATERAL (SELECT 'dev' || lpad(d::text, 5, '0')"
                " AS name, v.texts[1 + (s * 7 + d * 13) %% 401] AS value) w",
                params,
            )

    def plain_copy(self, log: str, start: int, stop: int, since: datetime, until: datetime) -> None:
        conn = self._fill
        assert conn is not None
        conn.execute(
            "INSERT INTO plain SELECT id, time_at, number, producer, owner, device, time,"
            " measurand, value, unit, attrs, format, received, message FROM readings"
            " WHERE log = %s AND idx >= %s AND idx < %s AND time_at >= %s AND time_at < %s",
            (log, start, stop, since, until),
        )

    def bulk_close(self) -> dict[str, Any]:
        conn = self._fill
        assert conn is not None
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '256MB'")
        for sql in self._deferred:
            conn.execute(sql)
        indexed = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("ANALYZE readings")
        conn.execute("ANALYZE messages")
        conn.execute("ANALYZE plain")
        analyze = time.perf_counter() - started
        conn.execute("CHECKPOINT")  # no dirty pages of the fill left to write meanwhile
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        conn.close()
        self._fill = None
        # the baseline's queries, on a connection that prepares them as the store's does
        self._query = psycopg.connect(self.url(self._label), autocommit=True)
        self._query.execute("SET TIME ZONE 'UTC'")
        return {
            "database_bytes": int(row[0]),
            "indexes_made_after_the_bulk": [sql.split()[2] for sql in self._deferred],
            "index_seconds": indexed,
            "analyze_seconds": analyze,
        }

    def plain_readings(
        self, device: str, measurand: str, since: datetime, until: datetime
    ) -> list[tuple[Any, ...]]:
        return self._query.execute(
            f"SELECT id, {PLAIN_COLUMNS} FROM plain WHERE producer = %s AND device = %s"  # noqa: S608
            " AND measurand = %s AND time_at >= %s AND time_at < %s ORDER BY time_at LIMIT 10000",
            (PRODUCER[0], device, measurand, since, until),
        ).fetchall()

    def plain_series(
        self, device: str, measurand: str, since: datetime, until: datetime, points: int
    ) -> list[tuple[Any, ...]]:
        span = (until - since) // timedelta(microseconds=1)
        return self._query.execute(
            "SELECT bucket, count(*), min(number), max(number), avg(number),"
            " (array_agg(number ORDER BY time_at DESC, id DESC))[1]"
            " FROM (SELECT div((extract(epoch FROM time_at) - extract(epoch FROM %s::timestamptz))"
            " * 1000000 * %s, %s)::bigint AS bucket, number, time_at, id FROM plain"
            " WHERE producer = %s AND device = %s AND measurand = %s AND time_at >= %s"
            " AND time_at < %s) AS r GROUP BY bucket ORDER BY bucket",
            (since, points, span, PRODUCER[0], device, measurand, since, until),
        ).fetchall()

    def describe(self) -> dict[str, Any]:
        with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in (
                    "server_version",
                    "fsync",
                    "synchronous_commit",
                    "full_page_writes",
                    "wal_level",
                    "shared_buffers",
                    "max_wal_size",
                    "work_mem",
                )
            }
        return {"settings": settings, "psycopg": psycopg.__version__}


# 1. ingest end to end


class BatchSizes(Recorder):
    """The node's recorder, noting how many messages each batch of ingest holds."""

    def __init__(self, store: UnitOfWork, sizes: list[int]) -> None:
        super().__init__(store)
        self.sizes = sizes

    def save(self, records: Sequence[MessageRecord], log: str) -> Any:
        self.sizes.append(len(records))
        return super().save(records, log)


def through_node(
    engine: Engine, broker: Mosquitto, messages: list[tuple[str, bytes]], label: str
) -> dict[str, Any]:
    """The payloads through the broker into a node on `engine` until all are committed."""
    node, count = engine.node(broker, label)
    sizes: list[int] = []
    node.node.ingest.recorder = BatchSizes(node.node.store, sizes)
    with node:
        node.add_user(*PRODUCER)
        started = publish_all(broker.url, messages)
        while count() < len(messages):
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"{engine.name}: only {count()} messages stored")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        stored = count()
        readings = node.node.store.log_size(LOG)
    return {
        "messages": stored,
        "readings": readings,
        "seconds": elapsed,
        "messages_per_s": stored / elapsed,
        "readings_per_s": readings / elapsed,
        "batches": {
            "count": len(sizes),
            "median_messages": statistics.median(sizes),
            "largest": max(sizes),
        },
    }


INGEST_ORDER = ("sqlite", "postgres", "postgres", "sqlite")
"""Each node runs twice, in ABBA order, and the raw delivery before and after: the
best of each is compared (the machine may be shared, and drift cancels out)."""


def bench_ingest(engines: list[Engine], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    fleet = Fleet(username=PRODUCER[0], meters=args.meters, pmus=args.pmus)
    messages = payloads(fleet, args.rounds)
    by_name = {engine.name: engine for engine in engines}
    broker = Mosquitto(workdir / "mosquitto", dict([SERVICE, PRODUCER])).start()
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], **{name: [] for name in by_name}}
    try:
        runs["raw"].append(baseline(broker, messages))
        for number, name in enumerate(INGEST_ORDER):
            figures = through_node(by_name[name], broker, messages, f"ingest-{number}")
            runs[name].append(figures)
            print(f"  {name}: {figures['readings_per_s']:,.0f} readings/s", flush=True)
        runs["raw"].append(baseline(broker, messages))
    finally:
        for process in PUBLISHERS:
            process.join(60)
        broker.cleanup()
    raw = max(runs["raw"], key=lambda run: run["messages_per_s"])
    nodes = {name: max(runs[name], key=lambda run: run["messages_per_s"]) for name in by_name}
    readings = nodes["sqlite"]["readings"]
    result: dict[str, Any] = {
        "workload": {
            "devices": len(fleet.devices()),
            "rounds": args.rounds,
            "messages": len(messages),
            "readings": readings,
            "qos": 1,
            "runs": f"raw delivery, nodes {', '.join(INGEST_ORDER)}, raw delivery; best of each",
        },
        "baseline_mosquitto_to_paho": {
            **raw,
            "readings_per_s": raw["messages_per_s"] * readings / len(messages),
            "messages_per_s_of_each_run": [run["messages_per_s"] for run in runs["raw"]],
        },
    }
    for name, figures in nodes.items():
        result[name] = {
            **figures,
            "ratio_vs_raw_delivery": figures["messages_per_s"] / raw["messages_per_s"],
            "readings_per_s_of_each_run": [run["readings_per_s"] for run in runs[name]],
        }
    ratio = nodes["postgres"]["readings_per_s"] / nodes["sqlite"]["readings_per_s"]
    result["ratio_postgres_vs_sqlite"] = ratio
    result["target_postgres_vs_sqlite"] = {
        "at_least": TARGETS["ingest_postgres_vs_sqlite"],
        "met": ratio >= TARGETS["ingest_postgres_vs_sqlite"],
    }
    return result


# 2. log append, 3. proofs, 4. audit


def decode(args: argparse.Namespace, workdir: Path) -> tuple[list[Window], dict[str, Any]]:
    """The fleet's payloads decoded once, in batches of `--batch-rounds` rounds."""
    scratch = SqliteStore(workdir / "decode.sqlite3")
    UserService(scratch, Wallets("bench-passphrase")).create(*PRODUCER, Role.PRODUCER)
    fleet = Fleet(PRODUCER[0], meters=args.meters, pmus=args.pmus)
    ingest = IngestService(scratch, log_id=LOG, max_payload_bytes=1 << 20)
    started = time.perf_counter()
    windows = decode_workload(ingest, fleet, args.append_readings, args.batch_rounds)
    seconds = time.perf_counter() - started
    scratch.close()
    readings = sum(w.readings for w in windows)
    return windows, {
        "readings": readings,
        "messages": sum(len(w.records) for w in windows),
        "readings_per_s": rate(readings, seconds),
        "what": "IngestService.record of each payload (codec, leaves, canonical bytes), "
        "the CPU a node spends on a reading before its write",
    }


def bench_append(engine: Engine, windows: list[Window]) -> tuple[Store, dict[str, Any]]:
    batches = [[row for record in w.records for row in PlainRow.of(record)] for w in windows]
    readings = sum(len(batch) for batch in batches)
    plain_seconds = engine.plain_append("plain-append", batches)
    store = engine.store("append")
    checkpointer = Checkpointer(
        store,
        log_id=LOG,
        private_key=bytes(Account.create().key),
        clock=lambda: datetime.now(UTC),
    )
    recorder = Recorder(store)
    writes: dict[str, float] = {}
    for window in windows:
        with timed(writes):
            result = recorder.save(window.records, LOG)
        assert result.readings == window.readings, result
        checkpointer.checkpoint_now()  # as the node signs one after a write (not timed)
    return store, {
        "batches": len(windows),
        "messages_per_batch": statistics.median(len(w.records) for w in windows),
        "readings": readings,
        "readings_per_s": rate(readings, writes["seconds"]),
        "baseline_plain_table_readings_per_s": rate(readings, plain_seconds),
        "ratio_vs_plain_table": plain_seconds / writes["seconds"],
    }


def sqlite_statements(store: Store, call: Callable[[], object]) -> list[str]:
    """The SQL statements (parameters filled in) a call makes on SQLite."""
    assert isinstance(store, SqliteStore)
    db = store._connection()
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        db.set_trace_callback(None)
    return [text for text in statements if text.lstrip().upper().startswith(("SELECT", "WITH"))]


def sqlite_plans(store: Store, call: Callable[[], object]) -> list[dict[str, Any]]:
    """Each query of a call on SQLite with the plan SQLite chose for it."""
    assert isinstance(store, SqliteStore)
    db = store._connection()
    return [
        {"sql": sql[:200], "plan": [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]}
        for sql in sqlite_statements(store, call)
    ]


PROOF_BUDGET = 20.0
"""Seconds the proofs of one store may take: a slow store makes fewer (the report says
how many)."""


def bench_proofs(store: Store, count: int) -> dict[str, Any]:
    size = store.log_size(LOG)
    ids = [r.id for start in range(0, size, PAGE) for r in store.readings_in_log(LOG, start, PAGE)]
    sample = random.Random(7).sample(ids, min(count, len(ids)))
    made = 0
    started = time.perf_counter()
    for reading_id in sample:
        reading = store.reading(reading_id)
        assert reading is not None
        assert proof_bundle(store, reading)["inclusion"] is not None
        made += 1
        if made >= 20 and time.perf_counter() - started > PROOF_BUDGET:
            break
    proofs = {"seconds": time.perf_counter() - started}
    lookups: dict[str, float] = {}
    with timed(lookups):
        for reading_id in sample[:made]:
            assert store.reading(reading_id) is not None
    result: dict[str, Any] = {
        "proofs": made,
        "log_size": size,
        "proofs_per_s": rate(made, proofs["seconds"]),
        "baseline_reading_lookups_per_s": rate(made, lookups["seconds"]),
        "ratio_vs_lookups": lookups["seconds"] / proofs["seconds"],
    }
    if isinstance(store, SqliteStore):
        reading = store.reading(sample[0])
        assert reading is not None
        result["one_proof_statements"] = sqlite_plans(store, lambda: proof_bundle(store, reading))
    return result


def audit_reads(store: Store) -> None:
    """What the audit reads, and nothing else: each page of readings as the fast path
    reads it (its leaf and its columns encoded), the nodes inside each page, the
    checkpoints, the messages."""
    size = store.log_size(LOG)
    for start in range(0, size, PAGE):
        end = min(size, start + PAGE)
        store.raw_leaf_rows(LOG, start, end)
        level = 0
        while (first := -(-start >> level)) < end >> level:
            store.raw_nodes(LOG, level, first, end >> level)
            level += 1
    after = 0
    while rows := store.raw_checkpoints(LOG, after, PAGE):
        after = int(rows[-1][0])  # type: ignore[call-overload]
    after = 0
    while messages := store.raw_messages(after, PAGE):
        after = messages[-1][0]


def audit_parts(store: Store) -> dict[str, float]:
    """The audit's work taken apart, each part timed alone over the whole log, in one
    process (the workers share it out, two cores at most here)."""
    size = store.log_size(LOG)
    rows: list[LeafRow] = []
    parts: dict[str, float] = {}
    with timed(parts, "read_leaf_rows (leaf and columns encoded)"):
        for start in range(0, size, PAGE):
            rows += store.raw_leaf_rows(LOG, start, min(start + PAGE, size)) or []
    matcher = LeafMatcher()
    with timed(parts, "match_leaves (LeafMatcher, no JSON decoded)"):
        leaves = [matcher.leaf(row) for row in rows]
    assert None not in leaves, "a healthy log is matched whole: no full check"
    bounds = [(start, min(start + PAGE, size)) for start in range(0, size, PAGE)]
    with timed(parts, "hash_leaves_sha3"):
        hashes = leaf_hashes([leaf for leaf in leaves if leaf is not None])
    with timed(parts, "hash_nodes_inside_pages_sha3"):
        levels = [subtrees(hashes[start:stop], start, stop) for start, stop in bounds]
    with timed(parts, "compare_nodes_in_the_database (raw_nodes_equal)"):
        for (start, _), inside in zip(bounds, levels, strict=True):
            assert all_stored(store, LOG, start, inside)
    payloads: list[bytes] = []
    with timed(parts, "read_messages"):
        after = 0
        while page := store.raw_messages(after, PAGE):
            payloads += [p for _, _, _, p in page]  # type: ignore[misc]
            after = page[-1][0]
    with timed(parts, "hash_payloads_sha3"):
        for payload in payloads:
            message_digest(payload)
    checkpoints = []
    with timed(parts, "read_checkpoints"):
        after = 0
        while page_of := store.checkpoints(LOG, after, PAGE):
            checkpoints += page_of
            after = page_of[-1].checkpoint.size
    with timed(parts, "verify_checkpoint_signatures"):
        for signed in checkpoints:
            verify_signature(signed)
    return {name: seconds for name, seconds in parts.items()}


AUDIT_FUNCTIONS = {
    "records_read (raw_leaf_rows)": ("raw.py", "raw_leaf_rows"),
    "records_matched (LeafMatcher.leaf)": ("match.py", "leaf"),
    "records_checked in full (check_reading)": ("records.py", "check_reading"),
    "pages checked (check_page: read, match, hash, nodes inside)": ("pages.py", "check_page"),
    "  of which nodes compared (raw_nodes_equal)": ("raw.py", "raw_nodes_equal"),
    "tree finished (LogPass._add_clean)": ("tree.py", "_add_clean"),
    "  of which checkpoints (_reached)": ("tree.py", "_reached"),
    "payloads rehashed (message_page)": ("messages.py", "message_page"),
}
"""Parts of the audit by the function doing them, for the profile's cumulative times."""


def profiled(call: Callable[[], object], top: int) -> tuple[dict[Any, Any], dict[str, Any]]:
    """cProfile of a call: its raw rows, and the functions with the most time of their own
    (psycopg's `wait`, its time waiting on the server)."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    rows: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(own for _, _, own, _, _ in rows.values())
    ranked = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return rows, {
        "profiled_seconds": total,
        "by_own_time": [
            {
                "function": f"{Path(file).name}:{line}({name})",
                "calls": calls,
                "own_s": own,
                "share": own / total,
            }
            for (file, line, name), (_, calls, own, _, _) in ranked
        ],
    }


def profile_audit(store: Store, top: int) -> dict[str, Any]:
    """cProfile of one more audit in one process (cProfile sees no worker): the
    cumulative time of each part of its work, and the functions that take the most
    time of their own."""
    rows, ranked = profiled(lambda: audit_log(store, LOG, None), top)
    total = next(cum for (_, _, name), (*_, cum, _) in rows.items() if name == "audit_log")
    parts = {}
    for label, (file, function) in AUDIT_FUNCTIONS.items():
        cumulative = sum(
            cum
            for (path, _, name), (*_, cum, _) in rows.items()
            if Path(path).name == file and name == function
        )
        parts[label] = {"seconds": cumulative, "share": cumulative / total}
    return {"cumulative_by_part": parts, **ranked}


def profile_append(engine: Engine, windows: list[Window], top: int) -> dict[str, Any]:
    """cProfile of the first batches written again into a store of their own."""
    store = engine.store("append-profile")
    recorder = Recorder(store)

    def write() -> None:
        for window in windows:
            recorder.save(window.records, LOG)

    _, ranked = profiled(write, top)
    store.close()
    return {"batches": len(windows), **ranked}


AUDIT_RUNS = 3
"""Audits (and reads alone) timed per store and way, after one untimed pass over the log
(the first reads of fresh rows pay for more than an audit does, e.g. PostgreSQL's hint
bits, and the first audit with workers starts their fork server); the best is
reported, each run too: the machine may be shared."""
AUDIT_WORKERS = os.cpu_count() or 1
"""Worker processes of the audit in pages, as `bal audit` starts by default."""


def audit_opener(engine: Engine, label: str) -> StoreOpener:
    """What opens the store of `label` again, in an audit worker (it pickles)."""
    if isinstance(engine, SqliteEngine):
        return partial(SqliteStore, engine.path(label))
    assert isinstance(engine, PostgresEngine)
    return partial(PostgresStore, engine.url(label))


def timed_audits(store: Store, pages: Pages) -> tuple[AuditReport, list[float]]:
    seconds = []
    for _ in range(AUDIT_RUNS):
        started = time.perf_counter()
        report = audit_log(store, LOG, None, pages=pages)
        seconds.append(time.perf_counter() - started)
        assert report.ok, report.problem
    return report, seconds


def bench_audit(store: Store, opener: StoreOpener, top: int) -> dict[str, Any]:
    """The audit with its pages checked by AUDIT_WORKERS processes (as `bal audit`
    runs), and in this process alone; the reads alone and the parts of the work in one
    process, to say where the time goes."""
    apart = Pages(workers=AUDIT_WORKERS, opener=opener)
    audit_reads(store)
    started = time.perf_counter()
    assert audit_log(store, LOG, None, pages=apart).ok
    first = time.perf_counter() - started
    report, with_workers = timed_audits(store, apart)
    _, alone = timed_audits(store, Pages())
    reads = []
    for _ in range(AUDIT_RUNS):
        started = time.perf_counter()
        audit_reads(store)
        reads.append(time.perf_counter() - started)
    seconds = min(with_workers)
    readings_per_s = rate(report.readings, seconds)
    result: dict[str, Any] = {
        "readings": report.readings,
        "checkpoints": report.checkpoints,
        "messages": report.messages,
        "workers": AUDIT_WORKERS,
        "seconds": seconds,
        "readings_per_s": readings_per_s,
        "readings_per_s_of_each_run": [rate(report.readings, s) for s in with_workers],
        "readings_per_s_first_run_untimed_above": rate(report.readings, first),
        "one_process": {
            "seconds": min(alone),
            "readings_per_s": rate(report.readings, min(alone)),
            "readings_per_s_of_each_run": [rate(report.readings, s) for s in alone],
        },
        "baseline_audit_reads_alone_per_s": rate(report.readings, min(reads)),
        "ratio_vs_reads_alone": min(reads) / seconds,
        "target": {
            "at_least": TARGETS["audit_readings_per_s"],
            "met": readings_per_s >= TARGETS["audit_readings_per_s"],
        },
    }
    runs = [audit_parts(store) for _ in range(AUDIT_RUNS)]
    parts = {name: min(run[name] for run in runs) for name in runs[0]}
    one_process = min(alone)
    result["parts_timed_alone_in_one_process"] = {
        name: {"seconds": part, "share_of_one_process_audit": part / one_process}
        for name, part in parts.items()
    }
    result["profile_of_one_process_audit"] = profile_audit(store, top)
    return result


# 5. queries over a large store


@dataclass(frozen=True)
class Bulk:
    """Where `total` readings lie: `devices` devices, one reading of MEASURAND every
    STEP seconds each, from midnight `start` on; device 0's readings of day
    `queried_day` come through the real write path."""

    total: int
    devices: int
    start: datetime

    @property
    def steps(self) -> int:
        return math.ceil(self.total / self.devices)

    @property
    def days(self) -> int:
        return math.ceil(self.steps / DAY_STEPS)

    @property
    def queried_day(self) -> int:
        return (self.steps // DAY_STEPS) // 2

    def day(self, number: int) -> datetime:
        return self.start + timedelta(days=number)

    def at(self, step: int) -> datetime:
        return self.start + timedelta(seconds=step * STEP)

    def chunks(self) -> Iterator[BulkChunk | range]:
        """Bulk chunks in time order; on the queried day, between them, the ranges of
        steps whose readings of device 0 go through the write path."""
        index = 0
        queried = self.queried_day * DAY_STEPS
        for first in range(0, self.steps, DAY_STEPS):
            stop = min(first + DAY_STEPS, self.steps)
            if first == queried:
                for minute in range(first, stop, INTERLEAVE_STEPS):
                    chunk = BulkChunk(minute, minute + INTERLEAVE_STEPS, 1, self.devices, index)
                    yield chunk
                    index += chunk.rows
                    yield range(minute, minute + INTERLEAVE_STEPS)
                continue
            last = self.total - (self.steps - 1) * self.devices  # devices in the last step
            full = stop - 1 if stop == self.steps and last < self.devices else stop
            if full > first:
                chunk = BulkChunk(first, full, 0, self.devices, index)
                yield chunk
                index += chunk.rows
            if full < stop:
                yield BulkChunk(full, stop, 0, last, index)


def device_payloads(bulk: Bulk) -> list[tuple[str, bytes, datetime]]:
    """The queried device's day: one one-reading PMU payload every STEP seconds."""
    day = bulk.day(bulk.queried_day)
    rng = random.Random(11)
    found = []
    for step in range(DAY_STEPS):
        moment = day + timedelta(seconds=step * STEP)
        document = {
            "device": QUERIED_DEVICE,
            "timestamp": moment.isoformat(),
            "readings": [
                {
                    "component": "BUS1",
                    "measurand": MEASURAND,
                    "data": 50 + rng.randint(-200, 200) / 1e4,
                }
            ],
        }
        found.append(
            (
                f"{producer_topic(PRODUCER[0])}/{QUERIED_DEVICE}",
                json.dumps(document).encode(),
                moment,
            )
        )
    return found


def fill(engine: Engine, bulk: Bulk) -> tuple[Store, dict[str, Any]]:
    """The query store: the bulk by SQL, the queried device's day through the write path."""
    store = engine.store("queries")
    owner = UserService(store, Wallets("bench-passphrase")).create(*PRODUCER, Role.PRODUCER)
    ingest = IngestService(store, log_id=LOG, max_payload_bytes=1 << 20)
    records = [
        ingest.record(Delivery(Channel.MQTT, topic, payload, moment + timedelta(seconds=1)))
        for topic, payload, moment in device_payloads(bulk)
    ]
    assert all(r.readings and not r.rejections for r in records)
    recorder = Recorder(store)
    days = [(bulk.start + timedelta(days=n)).date() for n in range(bulk.days)]
    engine.bulk_open("queries", int(bulk.start.timestamp()), bulk.devices, days)
    written = 0
    queried_first = bulk.queried_day * DAY_STEPS
    wallet = owner.wallet
    spent: dict[str, float] = {}
    indexed = 0
    for part in bulk.chunks():
        if isinstance(part, BulkChunk):
            with timed(spent, "bulk_sql"):
                engine.bulk_write(part, wallet)
            written += part.rows
            log, start, stop = BULK_LOG, part.index_base, part.index_base + part.rows
            steps = range(part.first, part.stop)
            if part.per_step == bulk.devices and (part.first // DAY_STEPS) % 3 == 0:
                print(f"    {engine.name}: {written:,} bulk rows", flush=True)
        else:
            batch = records[part.start - queried_first : part.stop - queried_first]
            with timed(spent, "queried_day_recorder_save"):
                saved = recorder.save(batch, LOG).readings
            log, start, stop = LOG, indexed, indexed + saved
            indexed, steps = stop, part
        with timed(spent, "plain_table_copy"):
            engine.plain_copy(log, start, stop, bulk.at(steps.start), bulk.at(steps.stop))
    with timed(spent, "finish"):
        facts = engine.bulk_close()
    stored = written + store.log_size(LOG)
    assert stored == bulk.total, (stored, bulk.total)
    return store, {
        "readings": stored,
        "fill_seconds": sum(spent.values()),
        "fill_parts_seconds": spent,
        **facts,
    }


QUERY_BUDGET = 30.0
"""Seconds one kind of query may take in all: a slow one is timed fewer times (at least
MIN_REPEATS), and the report says how many."""
MIN_REPEATS = 5


def timed_queries(
    run: Callable[[int], int], repeats: int, expected: int
) -> tuple[list[float], float]:
    """Latencies of calls of `run(n)` (each must return `expected`), after one warm-up
    call whose latency is returned apart: `repeats` of them, fewer if they are slow."""
    started = time.perf_counter()
    assert run(0) == expected
    first = time.perf_counter() - started
    samples = []
    for n in range(max(min(repeats, MIN_REPEATS), min(repeats, int(QUERY_BUDGET / first)))):
        started = time.perf_counter()
        got = run(n)
        samples.append(time.perf_counter() - started)
        assert got == expected, (got, expected)
    return samples, first


def bench_queries(engine: Engine, store: Store, bulk: Bulk, repeats: int) -> dict[str, Any]:
    day = bulk.day(bulk.queried_day)

    def window(kind: str, n: int) -> tuple[datetime, datetime]:
        if kind == "device_day":
            return day, day + timedelta(days=1)
        hour = day + timedelta(hours=n % 24)
        return hour, hour + timedelta(hours=1)

    def store_readings(kind: str) -> Callable[[int], int]:
        def run(n: int) -> int:
            since, until = window(kind, n)
            query = ReadingQuery(PRODUCER[0], QUERIED_DEVICE, MEASURAND, since, until, limit=10_000)
            return len(store.readings(query))

        return run

    def store_series(kind: str, points: int) -> Callable[[int], int]:
        def run(n: int) -> int:
            since, until = window(kind, n)
            query = SeriesQuery(PRODUCER[0], QUERIED_DEVICE, MEASURAND, since, until, points)
            buckets = store.series(query)
            assert len(buckets) == points
            return sum(b.count for b in buckets)

        return run

    def plain_readings(kind: str) -> Callable[[int], int]:
        def run(n: int) -> int:
            return len(engine.plain_readings(QUERIED_DEVICE, MEASURAND, *window(kind, n)))

        return run

    def plain_series(kind: str, points: int) -> Callable[[int], int]:
        def run(n: int) -> int:
            rows = engine.plain_series(QUERIED_DEVICE, MEASURAND, *window(kind, n), points)
            assert len(rows) == points
            return sum(int(row[1]) for row in rows)

        return run

    result: dict[str, Any] = {}
    for kind, expected, points in (
        ("device_day", DAY_STEPS, DAY_POINTS),
        ("device_hour", DAY_STEPS // 24, HOUR_POINTS),
    ):
        figures: dict[str, Any] = {"readings_per_query": expected, "series_points": points}
        for name, run in (
            ("readings", store_readings(kind)),
            ("baseline_plain_table_rows", plain_readings(kind)),
            ("series", store_series(kind, points)),
            ("baseline_plain_table_series", plain_series(kind, points)),
        ):
            samples, first = timed_queries(run, repeats, expected)
            figures[name] = {**latency(samples), "first_ms": 1000 * first}
        for name, base in (
            ("readings", "baseline_plain_table_rows"),
            ("series", "baseline_plain_table_series"),
        ):
            figures[f"ratio_{name}_p50_vs_plain_table"] = (
                figures[base]["p50_ms"] / figures[name]["p50_ms"]
            )
        result[kind] = figures
    p95 = max(result["device_day"][k]["p95_ms"] for k in ("readings", "series"))
    result["target_device_day_p95"] = {
        "under_ms": TARGETS["device_day_p95_ms"],
        "worst_p95_ms": p95,
        "met": p95 < TARGETS["device_day_p95_ms"],
    }
    return result


# why a store's query takes what it takes


def day_queries(bulk: Bulk) -> tuple[ReadingQuery, SeriesQuery]:
    day = bulk.day(bulk.queried_day)
    until = day + timedelta(days=1)
    return (
        ReadingQuery(PRODUCER[0], QUERIED_DEVICE, MEASURAND, day, until, limit=10_000),
        SeriesQuery(PRODUCER[0], QUERIED_DEVICE, MEASURAND, day, until, DAY_POINTS),
    )


def sqlite_diagnostics(store: Store, bulk: Bulk) -> dict[str, Any]:
    """The device-day queries' SQL as the store sends it: SQLite's plan, the statement's
    time alone (executed and fetched, no objects made), and the same after ANALYZE
    (which the store never runs: without its statistics SQLite plans by rules)."""
    assert isinstance(store, SqliteStore)
    db = store._connection()
    readings, series = day_queries(bulk)
    calls: dict[str, Callable[[], object]] = {
        "readings": lambda: store.readings(readings),
        "series": lambda: store.series(series),
    }
    found: dict[str, Any] = {}
    for name, call in calls.items():
        (sql,) = sqlite_statements(store, call)
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            db.execute(sql).fetchall()
            samples.append(time.perf_counter() - started)
        found[name] = {
            "plan": [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")],
            "statement_alone_median_ms": 1000 * statistics.median(samples),
        }
    started = time.perf_counter()
    db.execute("PRAGMA analysis_limit = 1000")
    db.execute("ANALYZE")
    analyzed: dict[str, Any] = {"analyze_seconds": time.perf_counter() - started}
    for name, call in calls.items():
        (plan,) = sqlite_plans(store, call)
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        analyzed[name] = {
            "plan": plan["plan"],
            "store_call_median_ms": 1000 * statistics.median(samples),
        }
    found["after_analyze_with_analysis_limit_1000"] = analyzed
    return found


def postgres_diagnostics(url: str, bulk: Bulk) -> dict[str, Any]:
    """The device-day queries as the store runs them, planned and timed by the server
    (auto_explain with ANALYZE, on a store of one connection), against the whole call."""
    store = PostgresStore(url, max_size=1)
    notices: list[str] = []
    try:
        with store._pool.connection() as conn:
            conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
            for setting in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_min_duration = 0",
                "SET auto_explain.log_analyze = on",
                "SET auto_explain.log_buffers = on",
                "SET auto_explain.log_level = notice",
            ):
                conn.execute(setting)
    except psycopg.Error as error:  # a server without the contrib module
        store.close()
        return {"unavailable": f"auto_explain: {error}"}
    readings, series = day_queries(bulk)
    found: dict[str, Any] = {}
    for name, call in (
        ("readings", lambda: store.readings(readings)),
        ("series", lambda: store.series(series)),
    ):
        call()  # planned once before, as the measured ones were
        calls, durations = [], []
        for _ in range(3):
            notices.clear()
            started = time.perf_counter()
            call()
            calls.append(time.perf_counter() - started)
            plan = [text for text in notices if "Query Text" in text][-1]
            durations.append(float(plan.split("duration:")[1].split("ms")[0]))
        found[name] = {
            "store_call_median_ms": 1000 * statistics.median(calls),
            "server_execution_median_ms": statistics.median(durations),
            "plan": plan.splitlines()[1:],
        }
    store.close()
    return found


# the run


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory = int(meminfo.read_text().split()[1]) * 1024
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": memory,
        "python": platform.python_version(),
        "load_average_1_5_15_at_start": list(os.getloadavg()),
    }


STAGES = ("ingest", "append", "queries")


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The figures that matter, per store, with their baselines, ratios and targets."""
    found: dict[str, Any] = {}
    engines = ("sqlite", "postgres")
    if "ingest" in report:
        ingest = report["ingest"]
        found["ingest_readings_per_s"] = {
            "baseline_raw_broker_delivery": ingest["baseline_mosquitto_to_paho"]["readings_per_s"],
            **{name: ingest[name]["readings_per_s"] for name in engines},
            **{
                f"{name}_vs_raw_delivery": ingest[name]["ratio_vs_raw_delivery"] for name in engines
            },
            "postgres_vs_sqlite": ingest["ratio_postgres_vs_sqlite"],
            "target_postgres_vs_sqlite_at_least_0.8_met": ingest["target_postgres_vs_sqlite"][
                "met"
            ],
        }
    if "append" in report:
        found["append_readings_per_s"] = {
            name: {
                "recorder_save": report["append"][name]["readings_per_s"],
                "baseline_plain_table": report["append"][name][
                    "baseline_plain_table_readings_per_s"
                ],
                "ratio": report["append"][name]["ratio_vs_plain_table"],
            }
            for name in engines
        }
        found["proofs_per_s"] = {
            name: {
                "proof_bundle": report["proofs"][name]["proofs_per_s"],
                "baseline_reading_lookups": report["proofs"][name][
                    "baseline_reading_lookups_per_s"
                ],
                "log_size": report["proofs"][name]["log_size"],
            }
            for name in engines
        }
        found["audit_readings_per_s"] = {
            name: {
                "audit_log": report["audit"][name]["readings_per_s"],
                "audit_log_in_one_process": report["audit"][name]["one_process"]["readings_per_s"],
                "workers": report["audit"][name]["workers"],
                "baseline_reads_alone": report["audit"][name]["baseline_audit_reads_alone_per_s"],
                "target_100000_met": report["audit"][name]["target"]["met"],
            }
            for name in engines
        }
    if "queries" in report:
        latencies: dict[str, Any] = {}
        for name in engines:
            for kind in ("device_day", "device_hour"):
                figures = report["queries"][name][kind]
                latencies[f"{name}_{kind}"] = {
                    what: [round(figures[what]["p50_ms"], 1), round(figures[what]["p95_ms"], 1)]
                    for what in (
                        "readings",
                        "baseline_plain_table_rows",
                        "series",
                        "baseline_plain_table_series",
                    )
                }
            latencies[f"{name}_device_day_p95_under_50_ms_met"] = report["queries"][name][
                "target_device_day_p95"
            ]["met"]
        found["query_latency_ms_p50_p95"] = latencies
        found["query_store_fill_seconds"] = {
            name: report["queries"][name]["fill"]["fill_seconds"] for name in engines
        }
    found["run_seconds"] = report["seconds"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=150)
    parser.add_argument("--pmus", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40, help="ingest: fleet rounds sent")
    parser.add_argument("--append-readings", type=int, default=100_000)
    parser.add_argument(
        "--batch-rounds", type=int, default=3, help="append: fleet rounds per Recorder.save"
    )
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--readings", type=int, default=10_000_000, help="queries: stored")
    parser.add_argument("--days", type=int, default=10, help="queries: days the bulk covers")
    parser.add_argument("--repeats", type=int, default=40, help="queries: timed per kind")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/storage.json"))
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    devices = max(2, round(args.readings / (args.days * DAY_STEPS)))
    if args.readings < 2 * DAY_STEPS:
        parser.error(f"--readings must be at least {2 * DAY_STEPS} (two device-days)")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = math.ceil(math.ceil(args.readings / devices) / DAY_STEPS)
    bulk = Bulk(args.readings, devices, today - timedelta(days=days + 1))
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "storage",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory(prefix="bal-bench-") as tmp:
        workdir = Path(tmp)
        cluster = started_cluster(fsync=True)
        try:
            engines: list[Engine] = [SqliteEngine(workdir), PostgresEngine(cluster, workdir)]
            report["engines"] = {engine.name: engine.describe() for engine in engines}
            if "ingest" in stages:
                print("1. ingest end to end ...", flush=True)
                report["ingest"] = bench_ingest(engines, args, workdir)
            if "append" in stages:
                print("2-4. decoding the append workload ...", flush=True)
                windows, report["decode"] = decode(args, workdir)
                for key in ("append", "proofs", "audit"):
                    report[key] = {}
                for engine in engines:
                    print(f"  {engine.name}: append, proofs, audit ...", flush=True)
                    store, report["append"][engine.name] = bench_append(engine, windows)
                    report["append"][engine.name]["profile_of_the_first_batches"] = profile_append(
                        engine, windows[:10], args.profile_top
                    )
                    report["proofs"][engine.name] = bench_proofs(store, args.proofs)
                    report["audit"][engine.name] = bench_audit(
                        store, audit_opener(engine, "append"), args.profile_top
                    )
                    store.close()
                report["append"]["ratio_postgres_vs_sqlite"] = (
                    report["append"]["postgres"]["readings_per_s"]
                    / report["append"]["sqlite"]["readings_per_s"]
                )
            if "queries" in stages:
                print(f"5. queries: filling {args.readings:,} readings ...", flush=True)
                report["queries"] = {
                    "workload": {
                        "readings": args.readings,
                        "devices": devices,
                        "days": bulk.days,
                        "every_s": STEP,
                        "queried": {
                            "device": QUERIED_DEVICE,
                            "measurand": MEASURAND,
                            "day": bulk.day(bulk.queried_day).date().isoformat(),
                            "written_through": "IngestService.record + Recorder.save, "
                            f"{INTERLEAVE_STEPS} readings at a time between the bulk rows",
                        },
                        "repeats": args.repeats,
                        "fill": "both stores filled at once (two threads), then queried "
                        "one after the other",
                    }
                }
                with ThreadPoolExecutor(len(engines)) as pool:  # fill both at once
                    filling = {engine.name: pool.submit(fill, engine, bulk) for engine in engines}
                    filled = {name: future.result() for name, future in filling.items()}
                for engine in engines:
                    store, facts = filled[engine.name]
                    print(f"  {engine.name}: filled in {facts['fill_seconds']:.0f} s; queries")
                    figures = bench_queries(engine, store, bulk, args.repeats)
                    if isinstance(engine, PostgresEngine):
                        diagnostics = postgres_diagnostics(engine.url("queries"), bulk)
                    else:
                        diagnostics = sqlite_diagnostics(store, bulk)
                    report["queries"][engine.name] = {
                        "fill": facts,
                        **figures,
                        "device_day_diagnostics": diagnostics,
                    }
                    store.close()
        finally:
            cluster.remove()
    report["seconds"] = time.perf_counter() - started
    report = {"summary": summary(report), **report}
    report["machine"]["load_average_1_5_15_at_end"] = list(os.getloadavg())
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
