"""The hot window (issue 17) on SQLite and PostgreSQL: what archiving and restoring
cost, what an archive keeps per reading, and whether a smaller live store answers a hot
device-day any faster; each figure against a baseline of the same engine, same run.

The data is genuine, so the archives are: `--days` days of readings written through
`Recorder.save` (real PMU payloads decoded, leaves, Merkle nodes), the log signed and
anchored after each day (`anchor_all`, as the checkpointer and anchorer would). Each
day holds the queried device's `--readings-per-day` one-reading payloads of one
measurand (8,640: one every 10 s, storage.py's device-day) and `--other-devices`
devices' 4-measurand payloads every `--other-every` seconds. The same records go to
every store (generated once, a day at a time), then each store is measured alone:

1. archive: `Archiver.archive_due()` with a clock that leaves `--hot-days` days hot
   (the others, the oldest, are archived), against reading the same days as the
   archiver does (`day_readings`, `day_messages`) and writing them to Parquet
   with pyarrow (zstd, the archiver's level), no hash, fsync, manifest or delete: the
   ratio is the archiver's own overhead. The time inside it is split by call;
2. restore: `Archiver.restore()` of those days, against a plain bulk insert of the
   same rows (read from the archive files, untimed) into a plain readings table with
   one index on (device, time) and a plain messages table, one transaction per day
   (executemany on SQLite, binary COPY on PostgreSQL), on the same engine and disk;
   the `Recorder.save` rate of the fill is reported beside it;
3. bytes per reading: archive data files and manifests per archived reading, against
   the live store: SQLite, the whole file after VACUUM (readings, messages, Merkle
   nodes, checkpoints, every index) per reading, and what archiving frees per archived
   reading (the file again VACUUMed INTO a copy after archiving); PostgreSQL, readings,
   messages and nodes (every partition, index and TOAST table) per reading, and the
   archived days' readings and messages partitions per archived reading;
4. device-day query: p50/p95 of `store.readings()` and `store.series()` over
   `--repeats` queries of the queried device's measurand on a hot day, with everything
   hot (before archiving: the baseline), with the hot window (after archiving), and
   with everything hot again (after the restore: how much the machine drifted).

The run fails loudly unless every restored day's readings are the ones archived (ids,
indices, leaf bytes), the live count is the original one, and `verify_archive` passes
(file, records, tree, signature) on the first and last archive files.

Durability as deployed: SQLite in WAL mode with synchronous=FULL, a throwaway
PostgreSQL 15 cluster (tests/postgres_cluster.py) with fsync on; PostgreSQL is VACUUM
ANALYZEd once after the fill (what autovacuum would have done by then).

Writes a JSON report (default benchmarks/results/lifecycle.json) with a summary first.
Run: `.venv/bin/python benchmarks/lifecycle.py` (45 days, 15 archived, about 490,000
readings: about 7 minutes on 2 cores); a bigger workload, 90 days with 60 hot:
`--days 90 --hot-days 60` (twice the data: 15 minutes or more); a tiny one:
`--days 3 --hot-days 2 --readings-per-day 120 --other-devices 1 --repeats 5`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from tests.postgres_cluster import PostgresCluster, started_cluster

from benchmarks.certify import rate
from benchmarks.storage import latency, machine, timed_queries
from platone_bal.adapters.archive_files import (
    COMPRESSION_LEVEL,
    LocalArchiveFiles,
    manifest_name,
)
from platone_bal.adapters.postgres import PostgresStore
from platone_bal.adapters.postgres.partitions import partition_name
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.archive import ArchivedMessage, ArchivedReading
from platone_bal.domain.checkpoint import Anchor
from platone_bal.domain.messages import Channel, MessageRecord
from platone_bal.domain.users import Role, producer_topic
from platone_bal.ports import (
    ArchiveFiles,
    ArchiveStatus,
    ReadingQuery,
    SeriesQuery,
    Store,
)
from platone_bal.services.archive_check import verify_archive
from platone_bal.services.archiver import Archiver, PartDone
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.ingest.records import Lookups
from platone_bal.services.recorder import Recorder
from platone_bal.services.users import UserService

LOG = "bal-main"
PRODUCER = "alice"
QUERIED = "pmu-0"
MEASURAND = "frequency"
OTHER_MEASURANDS = ("voltage", "current", "frequency", "power")
BATCH = 500
"""Messages per `Recorder.save` (a node's batches under load hold a few hundred)."""
SERIES_POINTS = 288
"""Buckets of the device-day series query: 5 minutes each."""
HOLDER = "lifecycle-bench"
EVERY_INDEX = 1 << 62
"""A `below` larger than any index: every live reading of a day."""
PASSED = ["file", "records", "tree", "signature"]
"""The checks `verify_archive` must pass without a chain (the anchor's is not run)."""
SIGNING_KEY = hashlib.sha3_256(b"lifecycle benchmark checkpoints").digest()
CONTRACT = "0x" + "5f" * 20
"""A made-up registry: no chain is run, the anchors are recorded as the anchorer would."""


class BenchmarkFailed(RuntimeError):
    """The lifecycle lost, changed or could not prove a reading: no figure counts."""


# the workload


@dataclass(frozen=True)
class Workload:
    """`days` days from midnight `start`; the clock stands on the last day, so the
    first `days - hot_days` days are due for archiving."""

    days: int
    hot_days: int
    readings_per_day: int
    other_devices: int
    other_every: int
    start: datetime

    def day(self, number: int) -> date:
        return (self.start + timedelta(days=number)).date()

    @property
    def archived(self) -> list[date]:
        return [self.day(n) for n in range(self.days - self.hot_days)]

    @property
    def queried_day(self) -> datetime:
        """A day in the middle of the hot window."""
        return self.start + timedelta(days=self.days - 1 - self.hot_days // 2)

    def clock(self) -> datetime:
        return self.start + timedelta(days=self.days - 1, hours=12)

    @property
    def per_day(self) -> int:
        """Readings of one day, every device."""
        others = self.other_devices * (86_400 // self.other_every) * len(OTHER_MEASURANDS)
        return self.readings_per_day + others

    def sent(self, number: int) -> list[tuple[datetime, str, list[tuple[str, float]]]]:
        """Day `number`'s payloads as (time, device, [(measurand, value)]), in time order."""
        midnight = self.start + timedelta(days=number)
        step = 86_400 / self.readings_per_day
        sent = [
            (midnight + timedelta(seconds=n * step), QUERIED, [(MEASURAND, _value(n))])
            for n in range(self.readings_per_day)
        ]
        for device in range(1, self.other_devices + 1):
            for n in range(86_400 // self.other_every):
                at = midnight + timedelta(seconds=n * self.other_every + device)
                values = [(name, _value(n + k)) for k, name in enumerate(OTHER_MEASURANDS)]
                sent.append((at, f"pmu-{device}", values))
        return sorted(sent, key=lambda item: item[0])


class Decoder:
    """Payloads made into records the node's own way (`IngestService.record`: the
    codec, leaves, canonical bytes), on a scratch store that holds the producer."""

    def __init__(self, workdir: Path) -> None:
        self.scratch = SqliteStore(workdir / "decode.sqlite3")
        users = UserService(self.scratch, Wallets("bench-passphrase"))
        self.producer = users.create(PRODUCER, "secret-pass-1", Role.PRODUCER)
        self.keystore = self.scratch.user_keystore(PRODUCER) or ""
        self.ingest = IngestService(self.scratch, log_id=LOG, max_payload_bytes=1 << 20)

    def records(self, workload: Workload, number: int) -> list[MessageRecord]:
        lookups = Lookups()
        found = []
        for at, device, values in workload.sent(number):
            document = {
                "device": device,
                "timestamp": at.isoformat(),
                "readings": [
                    {"component": "BUS1", "measurand": name, "phase": "A", "data": value}
                    for name, value in values
                ],
            }
            topic = f"{producer_topic(PRODUCER)}/{device}"
            payload = json.dumps(document).encode()
            delivery = Delivery(Channel.MQTT, topic, payload, at + timedelta(seconds=1))
            found.append(self.ingest.record(delivery, lookups))
        return found

    def close(self) -> None:
        self.scratch.close()


def _value(n: int) -> float:
    return 50 + (n * 7 % 401 - 200) / 10_000


def fingerprint(readings: Sequence[ArchivedReading]) -> str:
    """SHA3-256 of the readings' ids, indices and leaf bytes, in order."""
    digest = hashlib.sha3_256()
    for reading in readings:
        digest.update(f"{reading.id}:{reading.index}:".encode())
        digest.update(reading.leaf)
    return digest.hexdigest()


# the two engines


class Engine(Protocol):
    """What the run needs of a backend beyond its store: sizes and a plain baseline."""

    name: str

    def open(self) -> Store: ...

    def after_fill(self) -> None: ...

    def live_bytes(self, archived: Sequence[date]) -> dict[str, Any]:
        """Sizes before archiving; `bytes` is what counts per reading."""
        ...

    def freed_bytes(self, before: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """After archiving: the live bytes of the archived days, and how measured."""
        ...

    def plain_insert(
        self, readings: Sequence[ArchivedReading], messages: Sequence[ArchivedMessage]
    ) -> float:
        """Seconds to write the rows into plain tables in one transaction."""
        ...

    def close(self) -> None: ...


def _rows(records: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A dataclass's values in field order (dataclasses.astuple copies deeply)."""
    names = [field.name for field in fields(records[0])] if records else []
    return [tuple(getattr(record, name) for name in names) for record in records]


PLAIN_READINGS = (
    "id {key}, idx {int}, message_id {int}, leaf {blob}, log {text}, producer {text},"
    " owner {text}, device {text}, time {text}, measurand {text}, value {text}, unit {text},"
    " attrs {text}, format {text}, received {text}"
)
"""A plain table of ArchivedReading's fields, in their order."""
PLAIN_MESSAGES = (
    "id {key}, received {text}, channel {text}, topic {text}, producer {text},"
    " sender {text}, digest {text}, size {int}, payload {blob}, format {text},"
    " outcome {text}, readings {int}"
)
"""A plain table of ArchivedMessage's fields, in their order."""


class SqliteEngine:
    """The store's file, and a plain one beside it for the baseline."""

    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "scd.sqlite3"
        self._plain: sqlite3.Connection | None = None

    def open(self) -> Store:
        return SqliteStore(self.path)

    def after_fill(self) -> None:
        pass  # live_bytes VACUUMs the file

    def _size(self, path: Path) -> int:
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    def live_bytes(self, archived: Sequence[date]) -> dict[str, Any]:
        db = sqlite3.connect(self.path, isolation_level=None)
        started = time.perf_counter()
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seconds = time.perf_counter() - started
        db.close()
        return {
            "bytes": self._size(self.path),
            "counted": "the database file after VACUUM (and its WAL, checkpointed):"
            " readings, messages, Merkle nodes, checkpoints, every index",
            "vacuum_seconds": seconds,
        }

    def freed_bytes(self, before: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        copy = self.path.with_name("after-archiving.sqlite3")
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("VACUUM INTO ?", (str(copy),))
        db.close()
        after = copy.stat().st_size
        copy.unlink()
        return before["bytes"] - after, {
            "file_bytes_after_archiving_vacuumed": after,
            "counted": "the file after VACUUM before archiving less the file VACUUMed"
            " INTO a copy after archiving (the Merkle nodes stay live)",
        }

    def plain_insert(
        self, readings: Sequence[ArchivedReading], messages: Sequence[ArchivedMessage]
    ) -> float:
        db = self._plain_db()
        rows, message_rows = _rows(readings), _rows(messages)
        started = time.perf_counter()
        db.execute("BEGIN")
        for table, values in (("plain_messages", message_rows), ("plain_readings", rows)):
            if values:
                marks = ", ".join("?" * len(values[0]))
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", values)  # noqa: S608
        db.execute("COMMIT")
        return time.perf_counter() - started

    def _plain_db(self) -> sqlite3.Connection:
        if self._plain is None:
            db = sqlite3.connect(self.path.with_name("plain.sqlite3"), isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            types = {"key": "INTEGER PRIMARY KEY", "int": "INTEGER", "blob": "BLOB"}
            types["text"] = "TEXT"
            db.execute(f"CREATE TABLE plain_readings ({PLAIN_READINGS.format(**types)})")
            db.execute(f"CREATE TABLE plain_messages ({PLAIN_MESSAGES.format(**types)})")
            db.execute("CREATE INDEX plain_by_device ON plain_readings (device, time)")
            self._plain = db
        return self._plain

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()


class PostgresEngine:
    """A database of the run's cluster for the store, another for the baseline."""

    name = "postgres"

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster
        self.url = cluster.create_database()
        self._plain: psycopg.Connection[tuple[Any, ...]] | None = None

    def open(self) -> Store:
        return PostgresStore(self.url)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0] or 0)

    def after_fill(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) readings, messages, nodes")

    def live_bytes(self, archived: Sequence[date]) -> dict[str, Any]:
        tables = {
            table: self._one(
                "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(%s)", (table,)
            )
            for table in ("readings", "messages")
        }
        tables["nodes"] = self._one("SELECT pg_total_relation_size('nodes')")
        names = [
            partition_name(table, day) for table in ("readings", "messages") for day in archived
        ]
        days = self._one(
            "SELECT sum(pg_total_relation_size(to_regclass(n))) FROM unnest(%s::text[]) n",
            (names,),
        )
        return {
            "bytes": sum(tables.values()),
            "by_table": tables,
            "archived_days_partitions_bytes": days,
            "database_bytes": self._one("SELECT pg_database_size(current_database())"),
            "counted": "pg_total_relation_size (heap, indexes, TOAST) of every readings and"
            " messages partition and of nodes",
        }

    def freed_bytes(self, before: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        return before["archived_days_partitions_bytes"], {
            "counted": "the archived days' readings and messages partitions before archiving"
            " (archiving DELETEs their rows: autovacuum makes the space reusable, the files"
            " keep their size; the Merkle nodes stay live)",
        }

    def plain_insert(
        self, readings: Sequence[ArchivedReading], messages: Sequence[ArchivedMessage]
    ) -> float:
        conn = self._plain_conn()
        rows, message_rows = _rows(readings), _rows(messages)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            for table, types, values in (
                ("plain_messages", _PLAIN_MESSAGE_TYPES, message_rows),
                ("plain_readings", _PLAIN_READING_TYPES, rows),
            ):
                with cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    for row in values:
                        copy.write_row(row)
        return time.perf_counter() - started

    def _plain_conn(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._plain is None:
            conn = psycopg.connect(self.cluster.create_database(), autocommit=True)
            types = {"key": "bigint PRIMARY KEY", "int": "bigint", "blob": "bytea"}
            types["text"] = "text"
            conn.execute(f"CREATE TABLE plain_readings ({PLAIN_READINGS.format(**types)})")
            conn.execute(f"CREATE TABLE plain_messages ({PLAIN_MESSAGES.format(**types)})")
            conn.execute("CREATE INDEX plain_by_device ON plain_readings (device, time)")
            self._plain = conn
        return self._plain

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()


_PLAIN_READING_TYPES = ("int8", "int8", "int8", "bytea", *["text"] * 11)
_PLAIN_MESSAGE_TYPES = ("int8", *["text"] * 6, "int8", "bytea", "text", "text", "int8")


# time spent per call


class Stopwatch:
    """Seconds spent in chosen methods of the objects it wraps, by name: where the
    archiver's time goes, without touching it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, target: object, prefix: str, calls: Mapping[str, Collection[str]]) -> Any:
        """`target` with its methods named in `calls` timed; each maps to the methods
        of its result to time too (a node reader's batch read)."""
        return _Timed(target, prefix, calls, self)


class _Timed:
    def __init__(
        self, target: object, prefix: str, calls: Mapping[str, Collection[str]], watch: Stopwatch
    ) -> None:
        self._target, self._prefix, self._calls, self._watch = target, prefix, calls, watch

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._calls:
            return attribute
        key = f"{self._prefix}.{name}"

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = attribute(*args, **kwargs)
            finally:
                self._watch.seconds[key] += time.perf_counter() - started
            inner = self._calls[name]
            return _Timed(result, key, dict.fromkeys(inner, ()), self._watch) if inner else result

        return call


STORE_CALLS: Mapping[str, Collection[str]] = {
    **dict.fromkeys(
        (
            "live_days",
            "log_size",
            "day_readings",
            "archives",
            "checkpoint_covering",
            "anchor",
            "day_messages",
            "archive_day",
            "restore_archive",
            "take_lease",
            "release_lease",
        ),
        (),
    ),
    "nodes": ("nodes_at",),
}
FILE_CALLS: Mapping[str, Collection[str]] = dict.fromkeys(
    ("write_data", "write_manifest", "digest", "read_data"), ()
)


def timed_archiver(
    store: Store, files: ArchiveFiles, workload: Workload
) -> tuple[Archiver, Stopwatch]:
    watch = Stopwatch()
    archiver = Archiver(
        cast(Store, watch.wrap(store, "store", STORE_CALLS)),
        cast(ArchiveFiles, watch.wrap(files, "files", FILE_CALLS)),
        LOG,
        HOLDER,
        hot_days=workload.hot_days,
        keep_restored_days=7,
        clock=workload.clock,
    )
    return archiver, watch


def step_figures(done: Sequence[PartDone], seconds: float, watch: Stopwatch) -> dict[str, Any]:
    readings = sum(part.readings for part in done)
    calls = dict(sorted(watch.seconds.items(), key=lambda item: -item[1]))
    inside = sum(calls.values())  # a node reader's reads come after `nodes` returns
    return {
        "parts": len(done),
        "readings": readings,
        "seconds": seconds,
        "readings_per_s": rate(readings, seconds),
        "seconds_by_call": calls,
        "seconds_in_the_archiver_itself": seconds - inside,
    }


# the stages


def sign_and_anchor(store: Store, checkpointer: Checkpointer) -> None:
    """A checkpoint of the log as it is, signed, and recorded as anchored (as the
    checkpointer and the anchorer would, a made-up transaction on no chain)."""
    signed = checkpointer.checkpoint_now()
    assert signed is not None
    size, root, at = signed.checkpoint.size, signed.checkpoint.root, signed.checkpoint.time
    tx = "0x" + hashlib.sha3_256(root).hexdigest()
    store.add_anchor(Anchor(LOG, size, root, 1337, CONTRACT, tx, size, at))


def fill(
    workload: Workload, stores: Mapping[str, Store], decoder: Decoder
) -> tuple[dict[str, dict[str, Any]], float]:
    """Every day's records, made once, saved into every store, then signed and
    anchored; each store's `Recorder.save` timed, and the records' making."""
    checkpointers = {}
    for name, store in stores.items():
        store.add_user(decoder.producer, decoder.keystore)
        checkpointers[name] = Checkpointer(
            store, log_id=LOG, private_key=SIGNING_KEY, clock=lambda: datetime.now(UTC)
        )
    saving = dict.fromkeys(stores, 0.0)
    making = 0.0
    for number in range(workload.days):
        started = time.perf_counter()
        records = decoder.records(workload, number)
        making += time.perf_counter() - started
        for name, store in stores.items():
            recorder = Recorder(store)
            started = time.perf_counter()
            for first in range(0, len(records), BATCH):
                recorder.save(records[first : first + BATCH], LOG)
            saving[name] += time.perf_counter() - started
            sign_and_anchor(store, checkpointers[name])
        if number % 10 == 9 or number == workload.days - 1:
            print(f"  filled {number + 1} of {workload.days} days", flush=True)
    total = workload.days * workload.per_day
    for name, store in stores.items():
        if store.log_size(LOG) != total:
            raise BenchmarkFailed(f"{name}: {store.log_size(LOG)} readings written, not {total}")
    figures = {
        name: {"readings": total, "seconds": seconds, "readings_per_s": rate(total, seconds)}
        for name, seconds in saving.items()
    }
    return figures, making


def write_parquet(path: Path, records: Sequence[Any]) -> int:
    """The records' fields as columns in a Parquet file (the archiver's compression);
    its size."""
    names = [field.name for field in fields(records[0])] if records else []
    table = pa.table({name: [getattr(record, name) for record in records] for name in names})
    pq.write_table(table, path, compression="zstd", compression_level=COMPRESSION_LEVEL)
    return path.stat().st_size


def archive_baseline(
    store: Store, days: Sequence[date], scratch: Path
) -> tuple[dict[str, Any], dict[date, str]]:
    """The days read as the archiver reads them and written to Parquet, nothing else;
    and each day's fingerprint, to check the restore by."""
    scratch.mkdir(parents=True, exist_ok=True)
    size = store.log_size(LOG)
    seconds, readings, written = 0.0, 0, 0
    prints = {}
    for day in days:
        started = time.perf_counter()
        rows = store.day_readings(LOG, day, size)
        messages = store.day_messages(LOG, day, size)
        written += write_parquet(scratch / f"{day}-readings.parquet", rows)
        written += write_parquet(scratch / f"{day}-messages.parquet", messages)
        seconds += time.perf_counter() - started
        readings += len(rows)
        prints[day] = fingerprint(rows)
    figures = {
        "what": "day_readings + day_messages + pyarrow Parquet (zstd level"
        f" {COMPRESSION_LEVEL}) of each day: no hash, fsync, manifest, cover or delete",
        "readings": readings,
        "seconds": seconds,
        "readings_per_s": rate(readings, seconds),
        "parquet_bytes_per_reading": written / readings if readings else 0.0,
    }
    return figures, prints


def archive_bytes(store: Store, files: LocalArchiveFiles) -> dict[str, Any]:
    """What the archive directory holds for the log: data files and manifests."""
    records = [r for r in store.archives(LOG) if r.status is ArchiveStatus.ARCHIVED]
    data = sum(record.bytes for record in records)
    manifests = sum(files.path(manifest_name(r.file)).stat().st_size for r in records)
    readings = sum(record.readings for record in records)
    return {
        "files": len(records),
        "readings": readings,
        "data_bytes": data,
        "manifest_bytes": manifests,
        "bytes_per_reading": (data + manifests) / readings,
        "data_bytes_per_reading": data / readings,
        "manifest_bytes_per_reading": manifests / readings,
    }


def restore_baseline(engine: Engine, store: Store, files: LocalArchiveFiles) -> dict[str, Any]:
    """The archived rows (read from their files, untimed) bulk-inserted into plain
    tables, a day per transaction."""
    seconds, readings = 0.0, 0
    for record in store.archives(LOG):
        rows, messages = files.read_data(record.file)
        seconds += engine.plain_insert(rows, messages)
        readings += len(rows)
    return {
        "what": "the same readings and messages inserted into a plain readings table (one"
        " index on device, time) and a plain messages table, one transaction per day;"
        " executemany on SQLite, binary COPY on PostgreSQL",
        "readings": readings,
        "seconds": seconds,
        "readings_per_s": rate(readings, seconds),
    }


def device_day(store: Store, workload: Workload, repeats: int) -> dict[str, Any]:
    """p50/p95 of the queried device-day through `readings()` and `series()`."""
    since = workload.queried_day
    until = since + timedelta(days=1)
    limit = max(10_000, workload.readings_per_day)
    readings = ReadingQuery(PRODUCER, QUERIED, MEASURAND, since, until, limit=limit)
    series = SeriesQuery(PRODUCER, QUERIED, MEASURAND, since, until, SERIES_POINTS)
    runs: dict[str, Callable[[int], int]] = {
        "readings": lambda _: len(store.readings(readings)),
        "series": lambda _: sum(bucket.count for bucket in store.series(series)),
    }
    found: dict[str, Any] = {"live_readings": sum(n for _, n in store.live_days(LOG))}
    for name, run in runs.items():
        samples, first = timed_queries(run, repeats, workload.readings_per_day)
        found[name] = {**latency(samples), "first_ms": 1000 * first}
    return found


def validate(
    store: Store, files: LocalArchiveFiles, prints: Mapping[date, str], total: int
) -> dict[str, Any]:
    """BenchmarkFailed unless every archived day came back as it was, the live count
    is the original one, and the first and last archive files verify."""
    live = sum(count for _, count in store.live_days(LOG))
    if live != total or store.log_size(LOG) != total:
        raise BenchmarkFailed(f"{live} readings live after the restore, not {total}")
    for day, expected in prints.items():
        if fingerprint(store.day_readings(LOG, day, EVERY_INDEX)) != expected:
            raise BenchmarkFailed(f"{day}: the restored readings are not the archived ones")
    records = store.archives(LOG)
    if len(records) != len(prints) or any(r.status is not ArchiveStatus.RESTORED for r in records):
        raise BenchmarkFailed(f"archive records after the restore: {records}")
    verified = {}
    for record in {records[0].file: records[0], records[-1].file: records[-1]}.values():
        readings, messages = files.read_data(record.file)
        manifest = files.read_manifest(record.file)
        checks = verify_archive(manifest, files.digest(record.file), readings, messages)
        if [check.name for check in checks if check.ok] != PASSED:
            raise BenchmarkFailed(f"verify_archive {record.file}: {checks}")
        verified[record.file] = [f"{check.name}: {check.detail}" for check in checks]
    return {"live_readings": live, "days_compared": len(prints), "verified": verified}


def measure(
    engine: Engine, store: Store, workload: Workload, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Every stage on one filled store, in the order the docstring gives."""
    files = LocalArchiveFiles(workdir / engine.name / "archives")
    total = workload.days * workload.per_day
    live = engine.live_bytes(workload.archived)
    baseline, prints = archive_baseline(store, workload.archived, workdir / engine.name / "plain")
    print(f"  {engine.name}: queries with everything hot", flush=True)
    everything_hot = device_day(store, workload, args.repeats)
    archiver, watch = timed_archiver(store, files, workload)
    started = time.perf_counter()
    done = archiver.archive_due()
    archived = step_figures(done, time.perf_counter() - started, watch)
    expected = len(prints) * workload.per_day
    if {part.action for part in done} != {"archived"} or archived["readings"] != expected:
        raise BenchmarkFailed(f"{engine.name}: archive_due did {done}")
    print(f"  {engine.name}: archived {archived['readings_per_s']:,.0f} readings/s", flush=True)
    hot_window = device_day(store, workload, args.repeats)
    freed, freed_how = engine.freed_bytes(live)
    kept = archive_bytes(store, files)
    plain = restore_baseline(engine, store, files)
    archiver, watch = timed_archiver(store, files, workload)
    started = time.perf_counter()
    done = archiver.restore(workload.archived[0], workload.archived[-1])
    restored = step_figures(done, time.perf_counter() - started, watch)
    print(f"  {engine.name}: restored {restored['readings_per_s']:,.0f} readings/s", flush=True)
    checked = validate(store, files, prints, total)
    again = device_day(store, workload, args.repeats)
    return {
        "archive": {
            **archived,
            "baseline": baseline,
            "ratio_vs_baseline": archived["readings_per_s"] / baseline["readings_per_s"],
        },
        "restore": {
            **restored,
            "baseline": plain,
            "ratio_vs_baseline": restored["readings_per_s"] / plain["readings_per_s"],
        },
        "bytes": {
            "archive": kept,
            "live_store": {**live, "readings": total, "bytes_per_reading": live["bytes"] / total},
            "live_freed_by_archiving": {
                **freed_how,
                "bytes": freed,
                "bytes_per_archived_reading": freed / kept["readings"],
            },
        },
        "device_day": {
            "everything_hot": everything_hot,
            "hot_window": hot_window,
            "everything_hot_again_after_restore": again,
        },
        "validation": checked,
    }


# the report


def _ms(figures: Mapping[str, Any]) -> list[float]:
    return [round(figures["p50_ms"], 2), round(figures["p95_ms"], 2)]


def store_summary(found: Mapping[str, Any]) -> dict[str, Any]:
    archive, restore, size = found["archive"], found["restore"], found["bytes"]
    query = found["device_day"]
    archive_per_reading = size["archive"]["bytes_per_reading"]
    saved = found["fill_recorder_save"]["readings_per_s"]
    summary: dict[str, Any] = {
        "archive_readings_per_s": archive["readings_per_s"],
        "archive_baseline_read_and_parquet_readings_per_s": archive["baseline"]["readings_per_s"],
        "archive_vs_baseline": archive["ratio_vs_baseline"],
        "restore_readings_per_s": restore["readings_per_s"],
        "restore_baseline_plain_insert_readings_per_s": restore["baseline"]["readings_per_s"],
        "restore_vs_baseline": restore["ratio_vs_baseline"],
        "recorder_save_readings_per_s_of_the_fill": saved,
        "restore_vs_recorder_save": restore["readings_per_s"] / saved,
        "archive_bytes_per_reading": archive_per_reading,
        "live_store_bytes_per_reading": size["live_store"]["bytes_per_reading"],
        "live_bytes_freed_per_archived_reading": size["live_freed_by_archiving"][
            "bytes_per_archived_reading"
        ],
        "freed_vs_archive_bytes": size["live_freed_by_archiving"]["bytes_per_archived_reading"]
        / archive_per_reading,
    }
    for kind in ("readings", "series"):
        base = query["everything_hot"][kind]
        summary[f"device_day_{kind}_p50_p95_ms"] = {
            "everything_hot": _ms(base),
            "hot_window": _ms(query["hot_window"][kind]),
            "everything_hot_again_after_restore": _ms(
                query["everything_hot_again_after_restore"][kind]
            ),
        }
        summary[f"device_day_{kind}_p50_hot_window_vs_everything_hot"] = (
            query["hot_window"][kind]["p50_ms"] / base["p50_ms"]
        )
    return summary


HOW_TO_READ = {
    "rates": "readings/s; *_vs_baseline = rate / baseline rate (below 1: slower than it)",
    "archive_baseline": "the same days read as the archiver reads them (day_readings,"
    " day_messages) and written to Parquet with pyarrow, nothing else",
    "restore_baseline": "the same rows bulk-inserted into plain tables, a day per transaction",
    "bytes": "archive = data files + manifests per archived reading; live store = the"
    " whole store per reading before archiving; freed = what the archived days held live",
    "latency": "[p50, p95] ms of one device-day (readings of one measurand); hot_window /"
    " everything_hot below 1: the smaller live store answers faster",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--hot-days", type=int, default=None, help="default: 2/3 of --days")
    parser.add_argument("--readings-per-day", type=int, default=8_640, help="of the queried device")
    parser.add_argument("--other-devices", type=int, default=2)
    parser.add_argument("--other-every", type=int, default=300, help="seconds")
    parser.add_argument("--repeats", type=int, default=30, help="queries timed per figure")
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/lifecycle.json"))
    args = parser.parse_args()
    hot_days = args.hot_days if args.hot_days is not None else max(1, args.days * 2 // 3)
    if not 1 <= hot_days < args.days:
        parser.error("--hot-days must leave at least one day to archive and one hot")
    names = args.stores.split(",")
    if not names or set(names) - {"sqlite", "postgres"}:
        parser.error("--stores: sqlite, postgres or both")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    workload = Workload(
        args.days,
        hot_days,
        args.readings_per_day,
        args.other_devices,
        args.other_every,
        today - timedelta(days=args.days),
    )
    report = run(workload, names, args)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"report: {args.report}")


def run(workload: Workload, names: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "lifecycle",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "workload": {
            "days": workload.days,
            "hot_days": workload.hot_days,
            "archived_days": len(workload.archived),
            "readings": workload.days * workload.per_day,
            "readings_per_day": workload.per_day,
            "queried": {
                "device": QUERIED,
                "measurand": MEASURAND,
                "readings_per_day": workload.readings_per_day,
                "day": workload.queried_day.date().isoformat(),
            },
            "other_devices": {
                "devices": workload.other_devices,
                "every_s": workload.other_every,
                "measurands": list(OTHER_MEASURANDS),
            },
            "written_through": f"IngestService.record, then Recorder.save {BATCH} messages a"
            " batch; signed and anchored after each day",
            "repeats": args.repeats,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bal-lifecycle-") as tmp:
        workdir = Path(tmp)
        cluster = started_cluster(fsync=True) if "postgres" in names else None
        try:
            engines = {name: make_engine(name, workdir, cluster) for name in names}
            stores = {name: engine.open() for name, engine in engines.items()}
            print(f"filling {workload.days * workload.per_day:,} readings ...", flush=True)
            decoder = Decoder(workdir)
            saves, making = fill(workload, stores, decoder)
            decoder.close()
            report["workload"]["records_made_seconds"] = making
            for name, engine in engines.items():
                engine.after_fill()
                report[name] = {"fill_recorder_save": saves[name]}
                report[name].update(measure(engine, stores[name], workload, args, workdir))
                stores[name].close()
                engine.close()
        finally:
            if cluster is not None:
                cluster.remove()
    report["seconds"] = time.perf_counter() - started
    report["machine"]["load_average_1_5_15_at_end"] = list(os.getloadavg())
    summary = {name: store_summary(report[name]) for name in names}
    return {
        "summary": {**summary, "how_to_read": HOW_TO_READ, "run_seconds": report["seconds"]},
        **report,
    }


def make_engine(name: str, workdir: Path, cluster: PostgresCluster | None) -> Engine:
    if name == "sqlite":
        return SqliteEngine(workdir)
    assert cluster is not None
    return PostgresEngine(cluster)


if __name__ == "__main__":
    main()
