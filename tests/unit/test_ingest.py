"""Ingest against a real SQLite store: what becomes a reading, what a rejection, and why."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.leaf import message_digest
from platone_bal.domain.messages import Channel, MessageRecord
from platone_bal.domain.users import Role, User
from platone_bal.ports import ReadingQuery, RejectionQuery, StoreUnavailable
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.recorder import Recorder
from platone_bal.services.users import UserService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def ingest(store: SqliteStore) -> IngestService:
    return IngestService(store, log_id="bal-main", max_payload_bytes=4096)


def delivery(payload: bytes, topic: str = "platone/producer1", **kwargs: object) -> Delivery:
    return Delivery(Channel.MQTT, topic, payload, NOW, **kwargs)  # type: ignore[arg-type]


def reasons(store: SqliteStore) -> list[str]:
    return [row.reason for row in store.rejections(RejectionQuery(limit=1000))]


def test_samples_become_readings_with_leaves(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    result = ingest.ingest([delivery(SAMPLE_XML), delivery(SAMPLE_PMU, "platone/producer1/pmu1")])
    assert (result.messages, result.readings, result.rejections) == (2, 4, 0)
    rows = store.readings(ReadingQuery())
    assert [(r.index, r.device, r.value) for r in rows] == [
        (0, "11111111", "11.04"),
        (1, "11111111", "3.45"),
        (2, "pmu1", "11"),
        (3, "pmu1", "22"),
    ]
    assert all(r.owner == producer.wallet and r.log == "bal-main" for r in rows)
    assert rows[0].message == message_digest(SAMPLE_XML)
    assert store.payload(message_digest(SAMPLE_XML)) == SAMPLE_XML


def test_stored_leaf_is_the_canonical_contract_object(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    ingest.ingest([delivery(SAMPLE_PMU)])
    (raw,) = store._connection().execute("SELECT leaf FROM readings LIMIT 1").fetchone()
    leaf = json.loads(raw)
    assert leaf["owner"] == producer.wallet and leaf["producer"] == "producer1"
    assert leaf["source"] == {
        "format": "pmu-json",
        "message": message_digest(SAMPLE_PMU),
        "received": "2026-11-22T12:00:00.000000Z",
    }
    assert len(leaf["salt"]) == 32


def test_redelivery_is_stored_once(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    first = ingest.ingest([delivery(SAMPLE_PMU), delivery(SAMPLE_PMU)])
    second = ingest.ingest([delivery(SAMPLE_PMU, "platone/producer1/again")])
    assert (first.messages, first.duplicates, second.duplicates) == (1, 1, 1)
    assert len(store.readings(ReadingQuery())) == 2


def test_bad_input_is_recorded_and_never_stops_the_batch(
    ingest: IngestService, store: SqliteStore, users: UserService, producer: User
) -> None:
    users.create("consumer1", "secret-pass-1", Role.CONSUMER)
    future = (NOW + timedelta(days=2)).isoformat()
    old_and_new = json.dumps(
        {
            "device": "pmu1",
            "timestamp": "1970-01-01T00:00:00Z",
            "readings": [{"measurand": "f", "data": 50}],
        }
    ).encode()
    result = ingest.ingest(
        [
            delivery(b"<not xml"),
            delivery(
                b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><MeterReadings>&x;</MeterReadings>'
            ),
            delivery(b"x" * 5000),
            delivery(SAMPLE_PMU, "elsewhere/producer1"),
            delivery(SAMPLE_PMU, "platone/ghost"),
            delivery(SAMPLE_PMU, "platone/consumer1"),
            delivery(SAMPLE_PMU, sender="producer2"),
            delivery(SAMPLE_PMU, refusal="refused by the broker ACL"),
            delivery(old_and_new),
            delivery(SAMPLE_PMU.replace(b"2020-05-20T10:27:57", future[:19].encode())),
            delivery(SAMPLE_XML),
        ]
    )
    assert result.readings == 2 and result.messages == 11
    got = reasons(store)
    expected = [
        "malformed XML",
        "XML with a DTD is refused",
        "exceeds the limit of 4096",
        "is not under platone/<producer>",
        "unknown producer 'ghost'",
        "'consumer1' is not a producer",
        "'producer2' may not publish",
        "refused by the broker ACL",
        "is before 1990",
        "more than a day after its receipt",
    ]
    assert len(got) == len(expected) + 1  # the future PMU frame has two readings
    for reason, fragment in zip(got, expected, strict=False):
        assert fragment in reason
    oversized = (
        store._connection()
        .execute("SELECT size, length(payload) FROM messages WHERE size = 5000")
        .fetchone()
    )
    assert oversized == (5000, 4096)


def test_disabled_producer_is_refused(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    store._connection().execute("UPDATE users SET disabled = 1 WHERE username = 'producer1'")
    ingest.ingest([delivery(SAMPLE_PMU)])
    assert reasons(store) == ["producer 'producer1' is disabled"]


def test_a_codec_crash_becomes_a_rejection(
    ingest: IngestService, store: SqliteStore, producer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_: bytes) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("platone_bal.services.ingest.records.decode", explode)
    ingest.ingest([delivery(SAMPLE_PMU)])
    assert reasons(store) == ["internal error while decoding (RuntimeError: bug)"]


def test_writer_thread_batches_and_acks_after_commit(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    acked: list[int] = []
    lock = threading.Lock()

    def acker(n: int):  # type: ignore[no-untyped-def]
        def ack(record: MessageRecord) -> None:
            assert store.readings(ReadingQuery(limit=1)), "acked before the write committed"
            assert record.readings[0].leaf["device"] == f"pmu{n}"  # each gets its own outcome
            with lock:
                acked.append(n)

        return ack

    ingest.start()
    for n in range(500):
        payload = SAMPLE_PMU.replace(b'"pmu1"', f'"pmu{n}"'.encode())
        ingest.submit(delivery(payload, ack=acker(n)))
    assert ingest.flush(10)
    ingest.stop()
    assert sorted(acked) == list(range(500))
    assert len(store.readings(ReadingQuery(limit=1000))) == 1000
    indices = [r.index for r in store.readings(ReadingQuery(limit=1000))]
    assert indices == list(range(1000))


def test_store_errors_are_retried_not_dropped(
    ingest: IngestService, store: SqliteStore, producer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = ingest.recorder.save
    failures = iter([StoreUnavailable("disk full"), None])

    def flaky(records, log):  # type: ignore[no-untyped-def]
        error = next(failures)
        if error:
            raise error
        return real_save(records, log)

    monkeypatch.setattr(ingest.recorder, "save", flaky)
    ingest.start()
    ingest.submit(delivery(SAMPLE_PMU))
    assert ingest.flush(5)
    ingest.stop()
    assert len(store.readings(ReadingQuery())) == 2


def test_every_stored_reading_is_a_leaf_of_the_log_tree(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    from platone_bal.domain.merkle import (
        SHA3_256,
        inclusion_proof,
        merkle_root,
        tree_root,
        verify_inclusion,
    )

    for batch in range(3):  # several transactions: the frontier is reloaded each time
        payloads = [SAMPLE_PMU.replace(b'"pmu1"', f'"pmu{batch}-{n}"'.encode()) for n in range(7)]
        ingest.ingest([delivery(payload) for payload in payloads])
    size = store.log_size("bal-main")
    assert size == 42
    leaves = [
        row[0] for row in store._connection().execute("SELECT leaf FROM readings ORDER BY idx")
    ]
    hashes = [SHA3_256.hash_leaf(leaf) for leaf in leaves]
    root = tree_root(SHA3_256, store.nodes("bal-main"), size)
    assert root == merkle_root(SHA3_256, hashes)
    for index in (0, 13, 41):
        path = inclusion_proof(SHA3_256, store.nodes("bal-main"), index, size)
        assert verify_inclusion(SHA3_256, index, size, hashes[index], path, root)


def pmu_of(device: str) -> bytes:
    return SAMPLE_PMU.replace(b'"pmu1"', json.dumps(device).encode())


def test_a_lone_surrogate_is_a_rejection_and_ingest_goes_on(
    ingest: IngestService, store: SqliteStore, producer: User
) -> None:
    poison = pmu_of("pmu1\ud800")  # json.dumps writes the escape \ud800
    assert b'"pmu1\\ud800"' in poison
    ingest.start()
    ingest.submit(delivery(poison))
    ingest.submit(delivery(pmu_of("pmu2")))
    assert ingest.flush(5)
    ingest.stop()
    assert reasons(store) == ["JSON text holds a lone UTF-16 surrogate escape (not Unicode text)"]
    assert {r.device for r in store.readings(ReadingQuery())} == {"pmu2"}


def test_a_leaf_that_cannot_be_built_rejects_only_its_payload(
    ingest: IngestService, store: SqliteStore, producer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platone_bal.domain import leaf

    def picky(obj: dict[str, object]) -> bytes:
        if obj["device"] == "bad":
            raise UnicodeEncodeError("utf-8", "bad", 0, 1, "surrogates not allowed")
        return leaf.leaf_bytes(obj)

    monkeypatch.setattr("platone_bal.services.ingest.records.leaf_bytes", picky)
    result = ingest.ingest([delivery(pmu_of("bad")), delivery(pmu_of("good"))])
    assert (result.readings, result.rejections) == (2, 1)
    (reason,) = reasons(store)
    assert reason.startswith("internal error while decoding (UnicodeEncodeError:")


def test_a_payload_the_store_refuses_is_isolated_and_rejected(
    ingest: IngestService, store: SqliteStore, producer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One payload the store cannot take (a data fault, not a store fault) in a batch
    of 20: the other 19 are stored, it is rejected with the reason, all 20 are acked."""
    real_save = ingest.recorder.save
    poison = pmu_of("pmu-poison")

    def refuse_poison(records, log):  # type: ignore[no-untyped-def]
        if any(record.payload == poison and record.readings for record in records):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real_save(records, log)

    monkeypatch.setattr(ingest.recorder, "save", refuse_poison)
    acked: list[str] = []
    payloads = [pmu_of(f"pmu{n}") for n in range(19)]
    payloads.insert(7, poison)
    for payload in payloads:
        ingest.submit(delivery(payload, ack=lambda record: acked.append(record.outcome.value)))
    ingest.start()
    assert ingest.flush(10)
    ingest.stop()
    assert sorted(acked) == ["accepted"] * 19 + ["rejected"]
    assert len(store.readings(ReadingQuery(limit=100))) == 38
    assert reasons(store) == [
        "the payload could not be stored (OverflowError: Python int too large to convert"
        " to SQLite INTEGER)"
    ]


def test_a_stop_gives_up_on_a_store_that_stays_down(
    ingest: IngestService, store: SqliteStore, producer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is acknowledged, nothing rejected, and the stop ends within its grace."""

    def down(records, log):  # type: ignore[no-untyped-def]
        raise StoreUnavailable("disk I/O error")

    monkeypatch.setattr(ingest.recorder, "save", down)
    acked: list[MessageRecord] = []
    ingest.start()
    ingest.submit(delivery(SAMPLE_PMU, ack=acked.append))
    started = time.monotonic()
    assert ingest.stop(timeout=1.0) is False
    assert time.monotonic() - started < 5
    assert acked == []
    assert reasons(store) == []


def test_sqlite_faults_are_store_unavailable(store: SqliteStore) -> None:
    store._connection().execute("PRAGMA busy_timeout = 50")
    holder = sqlite3.connect(store.path, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            Recorder(store).save([], "bal-main")
    finally:
        holder.rollback()
        holder.close()
