"""The PostgreSQL store on a real server: the write path, partitions, proofs, two
concurrent writers, summaries, the access log, `bal audit`'s raw rows and faults."""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
import pytest

from platone_bal.adapters.postgres import PostgresStore, partitions
from platone_bal.adapters.postgres.schema import MIGRATIONS
from platone_bal.bootstrap import store_opener
from platone_bal.config import Settings
from platone_bal.domain.audit import AUDIT_LOG, AuditEntry
from platone_bal.domain.checkpoint import Anchor, Checkpoint, sign_checkpoint
from platone_bal.domain.grants import Slice
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.merkle import (
    SHA3_256,
    Frontier,
    MemoryNodes,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    tree_root,
    verify_inclusion,
    with_nodes,
)
from platone_bal.domain.messages import Channel, MessageRecord, ReadingRecord
from platone_bal.domain.readings import Reading, format_time
from platone_bal.domain.users import Role, User
from platone_bal.ports import (
    ReadingQuery,
    RejectionQuery,
    SeriesQuery,
    Store,
    StoreUnavailable,
    UserExists,
)
from platone_bal.services.audit import Pages, audit_log
from platone_bal.services.recorder import Recorder
from tests import postgres_cluster
from tests.postgres_cluster import started_cluster

postgres_server = postgres_cluster.postgres_server
postgres_url = postgres_cluster.postgres_url

LOG = "bal-main"
OWNER = "0x" + "ab" * 20
KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

pytestmark = pytest.mark.integration


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    db = PostgresStore(postgres_url, max_size=4)
    yield db
    db.close()


def message(
    times: list[datetime],
    *,
    producer: str | None = "alice",
    device: str = "meter1",
    received: datetime = T0,
    values: list[str] | None = None,
    measurand: str = "P",
    tag: str = "",
    rejections: tuple[str, ...] = (),
) -> MessageRecord:
    """A message as ingest builds it: one payload, a leaf per reading."""
    values = values or [str(n) for n in range(len(times))]
    stamps = [format_time(t) for t in times]
    body = {"tag": tag, "device": device, "t": stamps, "v": values, "r": format_time(received)}
    payload = json.dumps(body).encode()
    digest = message_digest(payload)
    source = Source("pmu-json", digest, received)
    readings = []
    for moment, value in zip(times, values, strict=True):
        reading = Reading(device, moment, measurand, value, "W", {"phase": "A"})
        name = producer or "nobody"
        leaf = leaf_object(
            reading, log=LOG, producer=name, owner=OWNER, source=source, salt=new_salt()
        )
        readings.append(ReadingRecord(reading, leaf, leaf_bytes(leaf)))
    topic = f"platone/{producer}"
    size = len(payload)
    return MessageRecord(
        Channel.MQTT, topic, producer, None, digest, size, payload, received, "pmu-json",
        readings, list(rejections),
    )  # fmt: skip


def rows_of(store: Store, sql: str) -> list[tuple[object, ...]]:
    assert isinstance(store, PostgresStore)
    with store._pool.connection() as conn:
        return conn.execute(sql).fetchall()


def test_the_store_is_the_whole_port(store: PostgresStore) -> None:
    port: Store = store
    assert port.log_size(LOG) == 0 and port.nodes(LOG) is not None


def test_sessions_speak_utc_and_sort_a_device_day_in_memory(store: PostgresStore) -> None:
    """A device-day page (8,640 rows, about 3 MB) sorted by id spilled to disk at the
    server's default 4 MB work_mem; the node's sessions raise it, and keep UTC."""
    assert rows_of(store, "SHOW work_mem") == [("32MB",)]
    assert rows_of(store, "SHOW TimeZone") == [("UTC",)]


def test_save_keeps_leaves_and_their_text_byte_for_byte(store: PostgresStore) -> None:
    first = message([T0, T0 + timedelta(seconds=1)], values=["11.04", "1e400"])
    second = message([T0 + timedelta(seconds=2)], device="meter2", tag="b")
    result = Recorder(store).save([first, second], LOG)
    assert (result.messages, result.duplicates, result.readings) == (2, 0, 3)
    rows = store.readings(ReadingQuery())
    items = first.readings + second.readings
    assert [r.index for r in rows] == [0, 1, 2]
    for row, item in zip(rows, items, strict=True):
        leaf = item.leaf
        assert row.time == leaf["time"] and row.value == leaf["value"]
        assert row.received == leaf["source"]["received"] == "2026-03-01T10:00:00.000000Z"
        assert (row.attrs, row.message, row.owner) == (
            leaf["attrs"],
            leaf["source"]["message"],
            OWNER,
        )
        assert store.leaf_bytes(LOG, row.index) == item.leaf_bytes
        assert store.reading(row.id) == row
    assert store.log_size(LOG) == 3
    assert store.leaves(LOG, 1, 10) == [(1, items[1].leaf_bytes), (2, items[2].leaf_bytes)]
    assert [r.index for r in store.readings_in_log(LOG, 2, 10)] == [2]
    assert store.reading(2**64) is None and store.leaf_bytes(LOG, 3) is None


def test_a_producers_payload_is_stored_once_unless_rejected(store: PostgresStore) -> None:
    recorder = Recorder(store)
    accepted = message([T0])
    assert recorder.save([accepted, accepted], LOG).duplicates == 1
    assert recorder.save([accepted], LOG).duplicates == 1
    refused = message([], tag="bad", rejections=("not a payload",))
    nameless = message([T0], producer=None, tag="anon")
    result = recorder.save([refused, refused, nameless, nameless], LOG)
    assert (result.messages, result.duplicates, result.rejections) == (4, 0, 2)
    assert len(store.readings(ReadingQuery())) == 3
    assert [r.reason for r in store.rejections(RejectionQuery())] == ["not a payload"] * 2
    newest = store.rejections(RejectionQuery(producer="alice", newest_first=True, limit=1))
    assert newest[0].message == refused.digest and newest[0].received == format_time(T0)
    keys = {("alice", accepted.digest), ("alice", refused.digest), (None, nameless.digest)}
    assert store.recorded(keys | {("bob", accepted.digest)}) == keys


def test_day_partitions_are_made_for_the_days_a_batch_touches(store: PostgresStore) -> None:
    days = [T0 - timedelta(days=2), T0, T0 + timedelta(hours=14)]  # 27 Feb, 1 and 2 March
    Recorder(store).save([message(days), message([T0], received=T0 + timedelta(days=1))], LOG)
    partitions = {
        name
        for (name,) in rows_of(
            store, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        )
    }
    assert {"readings_20260227", "readings_20260301", "readings_20260302"} <= partitions
    assert {"messages_20260301", "messages_20260302"} <= partitions
    assert rows_of(store, "SELECT count(*) FROM readings_default") == [(0,)]
    assert rows_of(store, "SELECT count(*) FROM readings_20260301") == [(2,)]
    window = ReadingQuery(since=T0, until=T0 + timedelta(hours=1))
    assert [r.time for r in store.readings(window)] == [format_time(T0)] * 2
    Recorder(store).save([message([T0], tag="again")], LOG)  # a known day: nothing to make
    assert store.log_size(LOG) == 5


def test_the_archivers_job_makes_the_next_days_partitions(store: PostgresStore) -> None:
    today = datetime.now(UTC).date()
    store.prepare_days(3)
    made = {
        name
        for (name,) in rows_of(
            store, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        )
    }
    for table in ("readings", "messages"):
        wanted = {partitions.partition_name(table, today + timedelta(days=n)) for n in range(4)}
        assert wanted <= made, table
    store.prepare_days(3)  # known days: nothing to make, no lock taken


def test_a_new_day_waits_for_running_queries_only_so_long(
    store: PostgresStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making a partition locks its parent table: a long query delays it, a bounded time."""
    monkeypatch.setattr(partitions, "CREATE_LOCK_TIMEOUT", "200ms")
    backfill = message([T0 - timedelta(days=400)], tag="old")
    with psycopg.connect(postgres_url) as reader:
        reader.execute("SELECT count(*) FROM readings").fetchone()  # its transaction stays open
        with pytest.raises(StoreUnavailable):
            Recorder(store).save([backfill], LOG)
    assert store.log_size(LOG) == 0
    assert Recorder(store).save([backfill], LOG).readings == 1
    assert rows_of(store, "SELECT count(*) FROM readings_20250125") == [(1,)]


def test_proofs_from_one_query_match_an_in_memory_tree(store: PostgresStore) -> None:
    recorder = Recorder(store)
    memory, frontier = MemoryNodes(), Frontier(SHA3_256)
    for batch in range(7):
        record = message([T0 + timedelta(seconds=n) for n in range(batch + 1)], tag=str(batch))
        recorder.save([record], LOG)
        for item in record.readings:
            memory.add(frontier.append(SHA3_256.hash_leaf(item.leaf_bytes)))
    size = store.log_size(LOG)
    assert size == frontier.size == 28
    reader = store.nodes(LOG)
    assert with_nodes(reader, lambda r: tree_root(SHA3_256, r, size)) == frontier.root()
    for index in (0, 13, 27):
        path = with_nodes(reader, partial(inclusion_proof, SHA3_256, index=index, size=size))
        assert path == inclusion_proof(SHA3_256, memory, index, size)
        leaf_hash = SHA3_256.hash_leaf(store.leaf_bytes(LOG, index) or b"")
        assert verify_inclusion(SHA3_256, index, size, leaf_hash, path, frontier.root())
    assert with_nodes(reader, lambda r: consistency_proof(SHA3_256, r, 5, 28)) == (
        consistency_proof(SHA3_256, memory, 5, 28)
    )
    assert reader.node(0, 27) == memory.node(0, 27)
    with pytest.raises(KeyError):
        reader.node(0, 28)


def test_two_writers_get_contiguous_indices_and_one_tree(postgres_url: str) -> None:
    """Two stores (two nodes) on one database, 50 batches each, at once."""
    stores = [PostgresStore(postgres_url, max_size=2) for _ in range(2)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(node: int) -> None:
        try:
            recorder = Recorder(stores[node])
            start.wait()
            for batch in range(50):
                records = [
                    message(
                        [T0 + timedelta(minutes=batch, seconds=n) for n in range(3)],
                        device=f"m{node}",
                        tag=f"{node}-{batch}-{k}",
                    )
                    for k in range(2)
                ]
                recorder.save(records, LOG)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(node,)) for node in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    store = stores[0]
    size = store.log_size(LOG)
    assert size == 2 * 50 * 2 * 3
    leaves = store.leaves(LOG, 0, size + 10)
    assert [index for index, _ in leaves] == list(range(size))
    expected = merkle_root(SHA3_256, [SHA3_256.hash_leaf(raw) for _, raw in leaves])
    assert with_nodes(store.nodes(LOG), lambda r: tree_root(SHA3_256, r, size)) == expected
    by_device = {r.device for r in store.readings(ReadingQuery(limit=1000))}
    assert by_device == {"m0", "m1"}
    for each in stores:
        each.close()


def test_series_buckets_are_computed_by_the_database(store: PostgresStore) -> None:
    times = [T0 + timedelta(minutes=m) for m in (0, 5, 14, 31, 59)]
    Recorder(store).save([message(times, values=["1", "3", "2", "10", "-4.5"])], LOG)
    query = SeriesQuery("alice", "meter1", "P", T0, T0 + timedelta(hours=1), 4)
    buckets = store.series(query)
    assert [(b.start, b.count, b.min, b.max, b.avg, b.last) for b in buckets] == [
        (format_time(T0), 3, 1.0, 3.0, 2.0, 2.0),
        (format_time(T0 + timedelta(minutes=30)), 1, 10.0, 10.0, 10.0, 10.0),
        (format_time(T0 + timedelta(minutes=45)), 1, -4.5, -4.5, -4.5, -4.5),
    ]  # the bucket 10:15-10:30 is empty and left out
    seen = Slice("alice", until=T0 + timedelta(minutes=10))
    assert [b.count for b in store.series(replace(query, slices=(seen,)))] == [2]
    hidden = Slice("alice", measurands=frozenset({"Q"}))
    assert store.series(replace(query, slices=(hidden,))) == []
    assert store.series(replace(query, until=T0)) == []
    edge = store.series(replace(query, since=T0 + timedelta(minutes=5), points=3))
    assert [(b.start, b.count) for b in edge] == [
        ("2026-03-01T10:05:00.000000Z", 2),  # 10:05 and 10:14 (width 18 min 20 s)
        ("2026-03-01T10:23:20.000000Z", 1),
        ("2026-03-01T10:41:40.000000Z", 1),
    ]


def test_device_activity_counts_by_the_hour_without_reading_the_readings(
    store: PostgresStore,
) -> None:
    """meter1 sends n + 1 readings in its n-th message, meter2 one in each; counts start
    at the hour `since` falls in (the port's rule)."""
    minutes = [-120, 10, 40, 65]
    arrivals = [T0 + timedelta(minutes=m) for m in minutes]
    recorder = Recorder(store)
    for n, received in enumerate(arrivals):
        measured = received - timedelta(seconds=1)
        first = message([measured] * (n + 1), received=received, tag=str(n))
        second = message([measured], device="meter2", received=received, tag=f"x{n}")
        recorder.save([first, second], LOG)
    last = format_time(arrivals[-1])
    for since, counts in [
        (T0 - timedelta(hours=3), (10, 4)),
        (T0, (9, 3)),
        (T0 + timedelta(minutes=20), (9, 3)),  # from 10:00
        (T0 + timedelta(minutes=59, seconds=59), (9, 3)),
        (T0 + timedelta(hours=1), (4, 1)),  # from 11:00: the 11:05 message only
        (T0 + timedelta(hours=3), (0, 0)),
    ]:
        activity = store.device_activity("alice", since.strftime("%Y-%m-%dT%H:%M:%S.%f"))
        assert activity == {"meter1": (last, counts[0]), "meter2": (last, counts[1])}, since
    assert store.device_activity("bob", "2026-01-01T00:00:00") == {}
    assert rows_of(store, "SELECT sum(readings) FROM device_hours") == [(14,)]


def test_newest_first_pages_walk_back_by_id(store: PostgresStore) -> None:
    Recorder(store).save([message([T0 + timedelta(seconds=n) for n in range(7)])], LOG)
    ids = [r.id for r in store.readings(ReadingQuery())]
    first = store.readings(ReadingQuery(newest_first=True, limit=3))
    assert [r.id for r in first] == ids[::-1][:3]
    second = store.readings(ReadingQuery(newest_first=True, limit=3, before=first[-1].id))
    assert [r.id for r in second] == ids[::-1][3:6]
    assert store.readings(ReadingQuery(after=ids[4])) == store.readings(ReadingQuery())[5:]
    only = ReadingQuery(slices=(Slice("alice", devices=frozenset()),))
    assert store.readings(only) == [] and store.readings(ReadingQuery(slices=())) == []


def entry(who: str, producers: tuple[str, ...], action: str = "readings.read") -> AuditEntry:
    return AuditEntry(T0, who, "http", action, producers, "/v1/readings", 1)


def test_the_access_log_is_searched_by_who_and_by_producer(store: PostgresStore) -> None:
    entries = [
        entry("carol", ("alice",)),
        entry("carol via platform-1", ("alice", "bob")),
        entry("dave", ("bob",)),
        entry("carolyn", ()),
    ]
    assert Recorder(store).append_audit(entries) == 4
    assert [i for i, _ in store.audit_entries(who="carol")] == [0, 1]
    assert [i for i, _ in store.audit_entries(producer="bob")] == [1, 2]
    assert [i for i, _ in store.audit_entries(who="dave", producer="alice")] == [0, 1, 2]
    assert [i for i, _ in store.audit_entries(producer="bob", after=1)] == [2]
    assert store.audit_entries(who="carol")[1][1] == entries[1].leaf_bytes()
    columns = store.audit_columns(-1, 10)
    assert [c[4].split() for c in columns] == [["alice"], ["alice", "bob"], ["bob"], []]
    assert columns[1][:4] == (1, format_time(T0), "carol via platform-1", "readings.read")
    records = store.raw_records(AUDIT_LOG, 2, 10)
    assert [(r.index, r.columns["producers"]) for r in records] == [(2, " bob "), (3, "  ")]


def test_bal_audit_passes_then_names_the_tampered_row(store: PostgresStore) -> None:
    recorder = Recorder(store)
    for n in range(3):
        recorder.save([message([T0 + timedelta(seconds=n), T0], tag=str(n))], LOG)
    recorder.append_audit([entry("carol", ("alice",)), entry("dave", ("bob", "alice"))])
    root = with_nodes(store.nodes(LOG), lambda r: tree_root(SHA3_256, r, 6))
    store.add_checkpoint(sign_checkpoint(Checkpoint(LOG, 6, root, format_time(T0)), KEY))
    store.add_anchor(Anchor(LOG, 6, root, 1337, "0x" + "11" * 20, "0x" + "22" * 32, 9, "t"))
    report = audit_log(store, LOG, None)
    assert report.ok, report.problem
    assert (report.readings, report.checkpoints, report.messages) == (6, 1, 3)
    assert audit_log(store, AUDIT_LOG, None).ok
    assert [size for size, *_ in store.raw_checkpoints(LOG, 0, 10)] == [6]
    assert [row[1] for row in store.raw_anchors(LOG, 0, 10)] == [6]
    assert store.message_reading_index(LOG, store.raw_messages(0, 10)[1][0]) == 2
    rows_of(store, "UPDATE readings SET value = '9.99' WHERE idx = 4 RETURNING idx")
    report = audit_log(store, LOG, None)
    assert report.bad_index == 4 and "value" in (report.problem or "")
    tamper = "UPDATE audit_producers SET producer = 'eve' WHERE idx = 1 AND pos = 0 RETURNING idx"
    rows_of(store, tamper)
    report = audit_log(store, AUDIT_LOG, None)
    assert report.bad_index == 1 and "producers" in (report.problem or "")


def test_bal_audit_in_worker_processes_opened_from_the_settings(
    store: PostgresStore, postgres_url: str
) -> None:
    """`bal audit`'s workers open their stores from the settings (a pickled opener) and
    name a tampered reading as one process does."""
    recorder = Recorder(store)
    for n in range(6):
        times = [T0 + timedelta(seconds=n), T0 + timedelta(seconds=n, milliseconds=1)]
        recorder.save([message(times, tag=str(n))], LOG)
    settings = Settings(store="postgres", database_url=postgres_url)
    opener = pickle.loads(pickle.dumps(store_opener(settings)))  # noqa: S301 (our own bytes)
    pages = Pages(2, 2, opener, wait_for_workers=True)
    report = audit_log(store, LOG, None, pages=pages)
    assert report.ok and report.readings == 12, report.problem
    rows_of(store, "UPDATE readings SET device = 'meter9' WHERE idx = 9 RETURNING idx")
    report = audit_log(store, LOG, None, pages=pages)
    assert (report.bad_index, report.problem) == (
        9,
        "device: stored 'meter9', certified leaf says 'meter1'",
    )


def test_checkpoints_and_anchors_newest_first_and_covering(store: PostgresStore) -> None:
    for size in (2, 4, 8):
        checkpoint = Checkpoint(LOG, size, bytes([size]) * 32, format_time(T0))
        store.add_checkpoint(sign_checkpoint(checkpoint, KEY))
    store.add_anchor(Anchor(LOG, 4, bytes([4]) * 32, 1, "0xc", "0xab", 3, "t"))
    store.add_anchor(Anchor(LOG, 4, bytes([4]) * 32, 1, "0xc", "0xab", 3, "t"))  # no-op
    assert [c.checkpoint.size for c in store.latest_checkpoints(LOG, 2)] == [8, 4]
    assert [c.checkpoint.size for c in store.checkpoints(LOG, after=2)] == [4, 8]
    covering = store.checkpoint_covering
    assert [covering(LOG, i).checkpoint.size for i in (1, 3, 5)] == [4, 4, 8]  # type: ignore[union-attr]
    assert store.anchor_by_tx("0xAB") is not None and len(store.anchors()) == 1
    below = store.anchor_below(LOG, 8)
    assert below is not None and below == store.latest_anchor(LOG) and below.size == 4


def test_users_devices_and_duplicates(store: PostgresStore) -> None:
    alice = User("alice", Role.PRODUCER, "hash", "0x" + "01" * 20)
    store.add_user(alice, "{}")
    with pytest.raises(UserExists):
        store.add_user(User("alice", Role.CONSUMER, "h", "0x" + "02" * 20), "{}")
    with pytest.raises(UserExists):
        store.add_user(User("bob", Role.CONSUMER, "h", "0x" + "01" * 20), "{}")
    assert store.update_user("alice", disabled=True) and not store.update_user("nobody")
    assert store.get_user("alice") == User("alice", Role.PRODUCER, "hash", alice.wallet, True)
    assert store.revoke_user_tokens("alice", clients=True)
    assert store.get_user("alice").token_version == 1  # type: ignore[union-attr]
    store.set_egress_position(LOG, 5)
    store.set_egress_position(LOG, 7)
    assert store.egress_position(LOG) == 7 and store.egress_position("other") == 0


def eventually(check: Callable[[], object], patience: float = 20.0) -> object:
    """`check()` once the store answers again (the pool reconnects with a backoff)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return check()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_server_that_went_away_is_unavailable_then_back() -> None:
    cluster = started_cluster()
    try:
        store = PostgresStore(cluster.create_database(), timeout=1.0)
        Recorder(store).save([message([T0])], LOG)
        cluster.stop()
        with pytest.raises(StoreUnavailable):
            store.get_user("alice")
        with pytest.raises(StoreUnavailable):
            Recorder(store).save([message([T0], tag="lost")], LOG)
        with pytest.raises(StoreUnavailable):
            with_nodes(store.nodes(LOG), lambda r: tree_root(SHA3_256, r, 1))
        cluster.start()
        assert eventually(lambda: store.log_size(LOG)) == 1
        assert Recorder(store).save([message([T0], tag="later")], LOG).readings == 1
        store.close()
        cluster.stop()
        with pytest.raises(StoreUnavailable):
            PostgresStore(cluster.url("postgres"), timeout=1.0)
    finally:
        cluster.remove()


def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    stores: list[PostgresStore] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait()
        stores.append(PostgresStore(postgres_url, max_size=1))

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(stores) == 4
    versions = rows_of(stores[0], "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(version,) for version, _ in MIGRATIONS]  # each once
    for each in stores:
        each.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
