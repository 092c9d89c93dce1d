"""RawStore: rows exactly as stored, of the types `bal audit` holds them to, the
columns encoded as a leaf encodes them and the nodes compared in the database (the
audit's fast path); and the audit itself passing on a healthy store of every backend."""

from __future__ import annotations

import json

import pytest
import rfc8785

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.merkle import SHA3_256, tree_root
from platone_bal.domain.messages import Channel, MessageRecord, ReadingRecord
from platone_bal.domain.readings import Reading, format_time
from platone_bal.domain.users import User
from platone_bal.ports import Store
from platone_bal.services.audit import Pages, audit_log
from platone_bal.services.audit.match import LeafMatcher
from platone_bal.services.recorder import Recorder
from tests.contract.builders import (
    LOG,
    RECEIVED,
    T0,
    entry,
    make_anchor,
    minutes,
    pmu_message,
    rejected_message,
    save,
    signed,
)

READING_COLUMNS = ("log", "producer", "owner", "device", "time", "measurand", "value", "unit")
MEMBERS = (
    "device",
    "log",
    "measurand",
    "owner",
    "producer",
    "source",
    "time",
    "unit",
    "v",
    "value",
)
"""The leaf's members `raw_leaf_rows` encodes from the columns (all but attrs and salt)."""


@pytest.fixture
def records(store: Store, alice: User, bob: User) -> list[MessageRecord]:
    """Three batches: readings of alice and bob, a refused payload cut to its limit and an
    anonymous refusal between them."""
    made = [
        pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2")]),
        rejected_message(
            "alice", b"x" * 300, ["payload of 300 bytes exceeds the limit of 100"], cut_to=100
        ),
        pmu_message(bob, "m7", T0 + minutes(1), [("v", "3")], received=RECEIVED + minutes(1)),
        rejected_message(None, b"junk", ["topic 'x' is not under platone/<producer>"]),
        pmu_message(alice, "m2", T0 + minutes(2), [("f", "50.01"), ("v", "4"), ("i", "5")]),
    ]
    save(store, made[:2])
    save(store, made[2:4])
    save(store, made[4:])
    return made


def test_raw_messages_in_every_outcome(store: Store, records: list[MessageRecord]) -> None:
    rows = store.raw_messages(0, 100)
    assert [(digest, size, payload) for _, digest, size, payload in rows] == [
        (r.digest, r.size, r.payload) for r in records
    ]
    ids = [row[0] for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == 5
    for message_id, digest, size, payload in rows:
        assert (type(message_id), type(digest), type(size), type(payload)) == (int, str, int, bytes)
    assert rows[1][2:] == (300, b"x" * 100)  # cut, with the whole size
    assert store.raw_messages(ids[1], 2) == rows[2:4]
    assert store.raw_messages(ids[-1], 100) == []


def test_raw_records_of_readings(store: Store, records: list[MessageRecord]) -> None:
    messages = {digest: message_id for message_id, digest, _, _ in store.raw_messages(0, 100)}
    items = [(record, item) for record in records for item in record.readings]
    raw = store.raw_records(LOG, 0, 100)
    assert [r.index for r in raw] == list(range(6))
    for stored, (record, item) in zip(raw, items, strict=True):
        assert type(stored.index) is int
        assert type(stored.leaf) is bytes and stored.leaf == item.leaf_bytes
        columns, leaf = stored.columns, item.leaf
        for key in READING_COLUMNS:
            assert columns[key] == leaf[key], key
        attrs = columns["attrs"]
        assert (json.loads(attrs) if isinstance(attrs, str | bytes) else attrs) == leaf["attrs"]
        assert columns["format"] == leaf["source"]["format"] == "pmu-json"
        assert columns["received"] == leaf["source"]["received"] == format_time(record.received)
        assert columns["message"] == record.digest
        assert columns["message_id"] == messages[record.digest]
        assert type(columns["message_id"]) is int
        assert columns["message_size"] == columns["payload_length"] == len(record.payload)
    assert [r.index for r in store.raw_records(LOG, 2, 5)] == [2, 3, 4]
    assert store.raw_records(LOG, 6, 10) == []
    assert store.raw_records("bal-other", 0, 10) == []
    assert (store.raw_index_from(LOG, 3), store.raw_index_from(LOG, 6)) == (3, None)
    assert store.raw_index_from("bal-other", 0) is None


def test_raw_records_of_the_access_log(store: Store) -> None:
    written = [
        entry("alice via dso", "bob", "alice", action="proof.read"),
        entry("admin", action="users.list", at=RECEIVED + minutes(1)),
    ]
    Recorder(store).append_audit(written)
    raw = store.raw_records(AUDIT_LOG, 0, 10)
    assert [(r.index, r.leaf) for r in raw] == [(n, e.leaf_bytes()) for n, e in enumerate(written)]
    for stored, written_entry in zip(raw, written, strict=True):
        assert type(stored.index) is int and type(stored.leaf) is bytes
        assert stored.columns["time"] == format_time(written_entry.time)
        assert stored.columns["who"] == written_entry.who
        assert stored.columns["action"] == written_entry.action
        producers = stored.columns["producers"]
        assert isinstance(producers, str) and producers.split() == list(written_entry.producers)
    assert store.raw_records(AUDIT_LOG, 1, 10) == raw[1:]
    assert store.raw_records(AUDIT_LOG, 0, 1) == raw[:1]
    assert (store.raw_index_from(AUDIT_LOG, 1), store.raw_index_from(AUDIT_LOG, 2)) == (1, None)


def test_the_first_index_of_a_message(store: Store, records: list[MessageRecord]) -> None:
    ids = [message_id for message_id, *_ in store.raw_messages(0, 100)]
    assert [store.message_reading_index(LOG, i) for i in ids] == [0, None, 2, None, 3]
    assert store.message_reading_index("bal-other", ids[0]) is None
    assert store.message_reading_index(LOG, ids[-1] + 100) is None


def test_raw_checkpoints_and_anchors(store: Store) -> None:
    for size in (2, 4, 6):
        store.add_checkpoint(signed("bal-main", size))
        store.add_anchor(make_anchor("bal-main", size))
    store.add_anchor(make_anchor("other", 3))
    rows = store.raw_checkpoints("bal-main", 0, 10)
    assert rows == [
        (c.checkpoint.size, c.checkpoint.root, c.checkpoint.time, c.signature, c.signer)
        for c in (signed("bal-main", size) for size in (2, 4, 6))
    ]
    for row in rows:
        assert tuple(type(value) for value in row) == (int, bytes, str, str, str)
    assert [row[0] for row in store.raw_checkpoints("bal-main", 2, 1)] == [4]
    assert store.raw_checkpoints("bal-main", 6, 10) == []

    anchors = store.raw_anchors("bal-main", 0, 10)
    listed = store.anchors("bal-main")
    assert [row[0] for row in anchors] == [row_id for row_id, _ in listed]
    assert [row[1:] for row in anchors] == [
        (a.size, a.root, a.chain_id, a.contract, a.tx, a.block, a.time) for _, a in listed
    ]
    anchor_types = (int, int, bytes, int, str, str, int, str)
    for anchor_row in anchors:
        assert tuple(type(value) for value in anchor_row) == anchor_types
    assert store.raw_anchors("bal-main", anchors[0][0], 1) == anchors[1:2]
    assert [row[1] for row in store.raw_anchors("other", 0, 10)] == [3]


def test_bal_audit_finds_a_healthy_store_healthy(
    store: Store, records: list[MessageRecord]
) -> None:
    size = store.log_size(LOG)
    for at in (3, size):
        root = tree_root(SHA3_256, store.nodes(LOG), at)
        store.add_checkpoint(signed(LOG, at, root))
    store.add_anchor(make_anchor(LOG, 3, tree_root(SHA3_256, store.nodes(LOG), 3)))
    report = audit_log(store, LOG, None)
    assert report.ok, report.problem
    assert (report.size, report.readings, report.checkpoints) == (6, 6, 2)
    assert report.messages == 4  # the cut payload cannot be rechecked
    assert any("cut to the size limit" in note for note in report.notes)

    Recorder(store).append_audit([entry("carol", "alice"), entry("alice", "alice", "bob")])
    audit_root = tree_root(SHA3_256, store.nodes(AUDIT_LOG), 2)
    store.add_checkpoint(signed(AUDIT_LOG, 2, audit_root))
    report = audit_log(store, AUDIT_LOG, None)
    assert report.ok, report.problem
    assert (report.size, report.readings, report.checkpoints) == (2, 2, 1)


def message_of(producer: User, readings: list[Reading]) -> MessageRecord:
    """One message that gave these readings, each with its leaf as ingest makes it."""
    payload = b"a payload the readings below came from"
    source = Source("pmu-json", message_digest(payload), RECEIVED)
    items = []
    for reading in readings:
        leaf = leaf_object(
            reading, log=LOG, producer=producer.username, owner=producer.wallet, source=source,
            salt=new_salt(),
        )  # fmt: skip
        items.append(ReadingRecord(reading, leaf, leaf_bytes(leaf)))
    return MessageRecord(
        Channel.MQTT, "platone/alice/dev", producer.username, None, source.message,
        len(payload), payload, RECEIVED, "pmu-json", items,
    )  # fmt: skip


def odd_message(producer: User) -> MessageRecord:
    """Readings whose text needs every escape JSON has (quotes, backslashes, control
    characters; none for DEL, non-ASCII and U+2028), or none but is not ASCII, with a
    unit and without, attrs with a non-ASCII key and attrs given out of key order."""
    return message_of(
        producer,
        [
            Reading(
                'dev "q" \\ \x01\x1f\x7f',
                T0,
                "m\n\t\r\b\f",
                "v\u20ac\U0001f600\u2028",
                None,
                {"\u00fc": "\u00df", "a": ["x", "y"], "n": 5},
            ),
            Reading("plain", T0 + minutes(1), "P", "1.5", "W", {"z": "1", "a": "2"}),
            Reading("z\u00e4hler \u20ac", T0 + minutes(2), "P", "v\U0001f600", "\u00b0C"),
        ],
    )


def test_raw_leaf_rows_encode_the_columns_exactly_as_the_leaf_does(
    store: Store, alice: User
) -> None:
    record = odd_message(alice)
    save(store, [record])
    rows = store.raw_leaf_rows(LOG, 0, 10)
    assert rows is not None
    assert [row[0] for row in rows] == [0, 1, 2]
    matcher = LeafMatcher()
    for row, item in zip(rows, record.readings, strict=True):
        index, leaf, attrs, members, whole = row
        assert (type(index), type(leaf), type(members)) == (int, bytes, bytes)
        assert leaf == item.leaf_bytes and whole
        assert isinstance(attrs, str) and json.loads(attrs) == item.leaf["attrs"]
        assert members == bytes(rfc8785.dumps({key: item.leaf[key] for key in MEMBERS}))
        assert matcher.leaf(row) == leaf  # the fast path takes it: no full check needed
    report = audit_log(store, LOG, None, pages=Pages(1))
    assert report.ok and report.readings == 3, report.problem
    assert [row[0] for row in store.raw_leaf_rows(LOG, 1, 5) or []] == [1, 2]
    assert store.raw_leaf_rows(LOG, 3, 5) == []
    assert store.raw_leaf_rows("bal-other", 0, 10) == []


def test_raw_nodes_equal_counts_the_nodes_stored_as_given(
    store: Store, records: list[MessageRecord]
) -> None:
    runs = []
    for level, count in ((0, 6), (1, 3), (2, 1)):
        stored = dict(store.raw_nodes(LOG, level, 0, 10))
        assert set(stored) == set(range(count))
        given = b"".join(stored[index] for index in range(count))  # type: ignore[misc]
        assert store.raw_nodes_equal(LOG, [(level, 0, given)]) == count
        assert store.raw_nodes_equal(LOG, [(level, 1, given[32:])]) == count - 1
        forged = bytes(32) + given[32:]
        assert store.raw_nodes_equal(LOG, [(level, 0, forged)]) == count - 1
        assert store.raw_nodes_equal(LOG, [(level, 1, given)]) == 0  # each beside its own
        assert store.raw_nodes_equal("bal-other", [(level, 0, given)]) == 0
        runs.append((level, 0, given))
    assert store.raw_nodes_equal(LOG, runs) == 10  # all of them in one call
    assert store.raw_nodes_equal(LOG, [*runs, (0, 6, bytes(64))]) == 10  # past the log
    assert store.raw_nodes_equal(LOG, []) == 0


def test_raw_leaf_rows_encode_every_character_as_rfc8785_does(store: Store, alice: User) -> None:
    """Each ASCII character but NUL (which PostgreSQL text cannot hold) and a few others
    in a value: the members are the leaf's own encoding, so the fast path takes them."""
    odd = [chr(code) for code in range(1, 128)]
    odd += ["\u0080", "\u00ff", "\u2028", "\u2029", "\ufeff", "\ue000", "\U0001f600"]
    readings = [Reading("d", T0 + minutes(n), "P", f"v{c}w", None) for n, c in enumerate(odd)]
    record = message_of(alice, readings)
    save(store, [record])
    rows = store.raw_leaf_rows(LOG, 0, len(odd))
    assert rows is not None and len(rows) == len(odd)
    matcher = LeafMatcher()
    for row, item in zip(rows, record.readings, strict=True):
        assert row[3] == bytes(rfc8785.dumps({key: item.leaf[key] for key in MEMBERS})), row[1]
        assert matcher.leaf(row) == item.leaf_bytes
