"""The shared write path: `Recorder` over the store's `Transaction`.

Messages are stored once per producer and payload (rejected deliveries every time),
readings get contiguous indices of their log, and a batch commits whole or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.merkle import SHA3_256, merkle_root, tree_root
from platone_bal.domain.messages import Channel, SaveResult
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import User
from platone_bal.ports import ReadingQuery, RejectionQuery, Store, StoredReading, StoredRejection
from platone_bal.services.log_appender import LogAppender
from platone_bal.services.recorder import Recorder
from tests.contract.builders import (
    LOG,
    RECEIVED,
    T0,
    batch_reader,
    entry,
    leaves_of,
    message,
    minutes,
    pmu_message,
    pmu_payload,
    rejected_message,
    save,
)


def everything(store: Store, log: str = LOG) -> list[StoredReading]:
    return store.readings_in_log(log, 0, 10_000)


def all_rejections(store: Store) -> list[StoredRejection]:
    return store.rejections(RejectionQuery(limit=10_000))


def test_a_batch_gives_its_readings_contiguous_indices_in_order(store: Store, alice: User) -> None:
    first = [
        pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2")]),
        pmu_message(alice, "m2", T0, [("v", "3"), ("i", "4"), ("f", "50.01")]),
    ]
    assert save(store, first) == SaveResult(2, 0, 5, 0)
    assert store.log_size(LOG) == 5
    second = [pmu_message(alice, "m1", T0 + minutes(1), [("v", "5")])]
    assert save(store, second) == SaveResult(1, 0, 1, 0)
    third = [pmu_message(alice, "m1", T0 + minutes(n), [("v", str(n))]) for n in range(2, 6)]
    assert save(store, third) == SaveResult(4, 0, 4, 0)
    stored = everything(store)
    assert [r.index for r in stored] == list(range(10))
    assert [r.value for r in stored] == ["1", "2", "3", "4", "50.01", "5", "2", "3", "4", "5"]
    assert [store.leaf_bytes(LOG, i) for i in range(10)] == leaves_of(first + second + third)
    assert store.log_size(LOG) == 10


def test_a_reading_is_stored_as_its_leaf_says(store: Store, alice: User) -> None:
    record = pmu_message(alice, "pmu-7", T0, [("voltmagnitude", "11.040")], channel=Channel.HTTP)
    save(store, [record])
    (stored,) = everything(store)
    leaf = record.readings[0].leaf
    assert stored == StoredReading(
        id=stored.id,
        log=LOG,
        index=0,
        producer="alice",
        owner=alice.wallet,
        device="pmu-7",
        time=format_time(T0),
        measurand="voltmagnitude",
        value="11.040",
        unit="V",
        attrs={"component": "BUS1", "phase": "A"},
        format="pmu-json",
        received=format_time(RECEIVED),
        message=record.digest,
    )
    assert stored.attrs == leaf["attrs"] and stored.time == leaf["time"]
    assert stored.received == leaf["source"]["received"]


def test_an_empty_batch_writes_nothing(store: Store) -> None:
    assert save(store, []) == SaveResult(0, 0, 0, 0)
    assert store.log_size(LOG) == 0
    assert Recorder(store).append_audit([]) == 0
    assert store.log_size(AUDIT_LOG) == 0


def test_the_same_payload_of_a_producer_is_stored_once(store: Store, alice: User) -> None:
    record = pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2")])
    assert save(store, [record]) == SaveResult(1, 0, 2, 0)
    # a redelivery (MQTT QoS 1, the journal's replay), alone or in a batch
    assert save(store, [record]) == SaveResult(0, 1, 0, 0)
    fresh = pmu_message(alice, "m1", T0 + minutes(1), [("v", "3")])
    assert save(store, [record, fresh, record]) == SaveResult(1, 2, 1, 0)
    assert [r.index for r in everything(store)] == [0, 1, 2]
    assert [r.value for r in everything(store)] == ["1", "2", "3"]
    assert store.log_size(LOG) == 3


def test_a_payload_twice_in_one_batch_is_stored_once(store: Store, alice: User) -> None:
    record = pmu_message(alice, "m1", T0, [("v", "1")])
    assert save(store, [record, record]) == SaveResult(1, 1, 1, 0)
    assert store.log_size(LOG) == 1
    assert len(everything(store)) == 1


def test_the_same_payload_of_two_producers_is_stored_for_each(
    store: Store, alice: User, bob: User
) -> None:
    payload = pmu_payload("m1", T0, [("v", "1")])
    assert save(store, [message(alice, payload), message(bob, payload)]) == SaveResult(2, 0, 2, 0)
    assert [r.producer for r in everything(store)] == ["alice", "bob"]
    assert everything(store)[0].message == everything(store)[1].message


def test_rejected_payloads_are_all_kept(store: Store, alice: User) -> None:
    refused = rejected_message("alice", b"<not xml", ["malformed XML: unclosed token"])
    assert save(store, [refused]) == SaveResult(1, 0, 0, 1)
    assert save(store, [refused, refused]) == SaveResult(2, 0, 0, 2)
    rejections = all_rejections(store)
    assert [r.reason for r in rejections] == ["malformed XML: unclosed token"] * 3
    assert len({r.id for r in rejections}) == 3
    assert store.log_size(LOG) == 0


def test_a_payload_refused_first_is_stored_when_accepted_later(store: Store, alice: User) -> None:
    """E.g. refused while its producer was disabled, accepted when the journal replays it."""
    record = pmu_message(alice, "m1", T0, [("v", "1")])
    refused = rejected_message("alice", record.payload, ["producer 'alice' is disabled"])
    assert save(store, [refused]) == SaveResult(1, 0, 0, 1)
    assert save(store, [record]) == SaveResult(1, 0, 1, 0)
    assert save(store, [refused]) == SaveResult(1, 0, 0, 1)  # evidence of its own again
    assert save(store, [record]) == SaveResult(0, 1, 0, 0)
    assert len(everything(store)) == 1
    assert len(all_rejections(store)) == 2


def test_a_partly_rejected_payload_keeps_both_and_is_stored_once(store: Store, alice: User) -> None:
    payload = (
        b'{"device": "m1", "timestamp": "2026-03-01T08:00:00Z", "readings": ['
        b'{"measurand": "v", "data": 230.1}, {"measurand": "i", "data": "high"},'
        b' {"measurand": "f", "data": 50}]}'
    )
    record = message(alice, payload)
    assert len(record.readings) == 2 and len(record.rejections) == 1
    assert save(store, [record]) == SaveResult(1, 0, 2, 1)
    assert save(store, [record]) == SaveResult(0, 1, 0, 0)
    assert [r.value for r in everything(store)] == ["230.1", "50"]
    (rejection,) = all_rejections(store)
    assert rejection.reason == record.rejections[0]
    assert rejection.message == record.digest and rejection.format == "pmu-json"


def test_a_rejection_without_a_producer(store: Store) -> None:
    """A payload on a topic of no producer, from an anonymous publisher."""
    refused = rejected_message(
        None, b"junk", ["topic 'elsewhere/x' is not under platone/<producer>"]
    )
    assert save(store, [refused, refused]) == SaveResult(2, 0, 0, 2)
    first, second = all_rejections(store)
    assert first.producer is None and second.producer is None
    assert first.sender is None and first.topic == "elsewhere/x"
    assert store.recorded({(None, refused.digest)}) == {(None, refused.digest)}
    assert store.recorded({("alice", refused.digest)}) == set()


def test_a_rejection_of_a_producer_that_does_not_exist(store: Store) -> None:
    refused = rejected_message("ghost", b"{}", ["unknown producer 'ghost'"])
    assert save(store, [refused]) == SaveResult(1, 0, 0, 1)
    assert [r.producer for r in store.rejections(RejectionQuery(producer="ghost"))] == ["ghost"]


def test_a_rejection_is_stored_as_received(store: Store) -> None:
    received = datetime(2026, 3, 1, 10, 11, 12, 345678, tzinfo=UTC)
    refused = rejected_message(
        "alice",
        b"x" * 5000,
        ["payload of 5000 bytes exceeds the limit of 1000"],
        received=received,
        channel=Channel.HTTP,
        topic="platone/alice/m1",
        sender="alice/m1",
        cut_to=1000,
    )
    save(store, [refused])
    (rejection,) = all_rejections(store)
    assert rejection == StoredRejection(
        id=rejection.id,
        received=format_time(received),
        channel="http",
        topic="platone/alice/m1",
        producer="alice",
        sender="alice/m1",
        reason="payload of 5000 bytes exceeds the limit of 1000",
        message=refused.digest,
        size=5000,
        format=None,
    )


def test_rejection_queries(store: Store, alice: User, bob: User) -> None:
    records = [
        rejected_message(name, f"bad {n}".encode(), [f"reason {n}"])
        for n, name in enumerate(["alice", "bob", "alice", None, "alice"])
    ]
    save(store, records[:2])
    save(store, records[2:])
    every = all_rejections(store)
    assert [r.reason for r in every] == [f"reason {n}" for n in range(5)]
    ids = [r.id for r in every]
    assert ids == sorted(ids)
    alices = store.rejections(RejectionQuery(producer="alice"))
    assert [r.reason for r in alices] == ["reason 0", "reason 2", "reason 4"]
    page = store.rejections(RejectionQuery(producer="alice", after=alices[0].id, limit=1))
    assert [r.reason for r in page] == ["reason 2"]
    assert store.rejections(RejectionQuery(after=ids[-1])) == []
    recent = store.rejections(RejectionQuery(limit=2, newest_first=True))
    assert [r.reason for r in recent] == ["reason 4", "reason 3"]
    recent = store.rejections(RejectionQuery(producer="alice", limit=10, newest_first=True))
    assert [r.reason for r in recent] == ["reason 4", "reason 2", "reason 0"]


def test_many_reasons_of_one_payload(store: Store, alice: User) -> None:
    reasons = [f"readings[{n}] (m1): value 'x{n}' is not a decimal number" for n in range(101)]
    assert save(store, [rejected_message("alice", b"{}", reasons)]) == SaveResult(1, 0, 0, 101)
    assert [r.reason for r in all_rejections(store)] == reasons


def test_recorded_tells_which_messages_are_stored(store: Store, alice: User, bob: User) -> None:
    kept = pmu_message(alice, "m1", T0, [("v", "1")])
    refused = rejected_message("bob", b"bad", ["malformed"])
    save(store, [kept, refused])
    asked = {
        ("alice", kept.digest),
        ("bob", refused.digest),
        ("bob", kept.digest),  # the same payload from another producer was not stored
        ("alice", refused.digest),
        (None, kept.digest),
        ("alice", "0" * 64),
    }
    assert store.recorded(asked) == {("alice", kept.digest), ("bob", refused.digest)}
    assert store.recorded(set()) == set()
    assert store.recorded([("alice", kept.digest)]) == {("alice", kept.digest)}


def test_recorded_answers_for_many_messages_at_once(store: Store, alice: User) -> None:
    records = [pmu_message(alice, "m1", T0 + minutes(n), [("v", str(n))]) for n in range(30)]
    save(store, records[::2])
    unknown = {("alice", f"{n:064x}") for n in range(1500)}
    asked = {("alice", r.digest) for r in records} | unknown
    assert store.recorded(asked) == {("alice", r.digest) for r in records[::2]}


def test_logs_are_independent(store: Store, alice: User) -> None:
    main = [pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2")])]
    other = [pmu_message(alice, "m1", T0 + minutes(1), [("v", "3")], log="bal-second")]
    save(store, main)
    save(store, other, "bal-second")
    save(store, [pmu_message(alice, "m1", T0 + minutes(2), [("v", "4")])])
    assert store.log_size(LOG) == 3 and store.log_size("bal-second") == 1
    assert [r.index for r in everything(store, "bal-second")] == [0]
    assert [r.value for r in everything(store, "bal-second")] == ["3"]
    assert [r.value for r in everything(store)] == ["1", "2", "4"]
    assert store.leaf_bytes("bal-second", 0) == leaves_of(other)[0]


class _FailingAppender(LogAppender):
    """Appends, then fails: what is already written in the transaction must roll back."""

    def append(self, tree, log, leaf_hashes):  # type: ignore[no-untyped-def]
        super().append(tree, log, leaf_hashes)
        raise RuntimeError("the batch fails after its append")


def test_a_failed_batch_leaves_nothing_behind(store: Store, alice: User) -> None:
    first = [pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2"), ("f", "3")])]
    save(store, first)
    root = tree_root(SHA3_256, store.nodes(LOG), 3)
    doomed = [
        pmu_message(alice, "m1", T0 + minutes(1), [("v", "4")]),
        rejected_message("alice", b"bad", ["malformed"]),
    ]
    with pytest.raises(RuntimeError, match="fails after its append"):
        Recorder(store, _FailingAppender()).save(doomed, LOG)
    assert store.log_size(LOG) == 3
    assert store.recorded({("alice", r.digest) for r in doomed}) == set()
    assert all_rejections(store) == []
    nodes = batch_reader(store, LOG)
    assert nodes.nodes_at({(0, 3), (1, 1), (2, 0), (1, 0)}) == {(1, 0): nodes.node(1, 0)}
    assert store.leaf_bytes(LOG, 3) is None
    # and the log goes on from where it was
    assert save(store, doomed) == SaveResult(2, 0, 1, 1)
    assert store.log_size(LOG) == 4
    assert tree_root(SHA3_256, store.nodes(LOG), 3) == root
    assert tree_root(SHA3_256, store.nodes(LOG), 4) == merkle_root(
        SHA3_256, [SHA3_256.hash_leaf(leaf) for leaf in leaves_of(first + doomed)]
    )


def test_a_store_reopened_goes_on_with_the_log(
    store: Store, open_store: Callable[[], Store], alice: User
) -> None:
    first = [pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2"), ("f", "3")])]
    save(store, first)
    store.close()
    again = open_store()
    second = [pmu_message(alice, "m1", T0 + minutes(1), [("v", "4"), ("i", "5")])]
    assert save(again, second) == SaveResult(1, 0, 2, 0)
    assert save(again, first) == SaveResult(0, 1, 0, 0)
    assert again.log_size(LOG) == 5
    assert [again.leaf_bytes(LOG, i) for i in range(5)] == leaves_of(first + second)


def test_writers_on_two_stores_keep_the_log_contiguous(
    store: Store, open_store: Callable[[], Store], alice: User, bob: User
) -> None:
    """Two nodes on one database, each with two writer threads: every reading is logged
    once, the indices are 0..n-1 without a gap, and the tree is the tree of the leaves
    in index order."""
    other = open_store()
    batches = 6
    made: dict[bytes, str] = {}
    errors: list[BaseException] = []

    def writer(node: Store, producer: User, device: str) -> None:
        try:
            for n in range(batches):
                records = [
                    pmu_message(producer, device, T0 + minutes(n), [("v", f"{n}.{k}"), ("i", "1")])
                    for k in range(2)
                ]
                for record in records:
                    for item in record.readings:
                        made[item.leaf_bytes] = device
                assert save(node, records).readings == 4
                Recorder(node).append_audit([entry(producer.username, producer.username)])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [
        threading.Thread(target=writer, args=(node, producer, device))
        for node, producer, device in (
            (store, alice, "a1"),
            (store, bob, "b1"),
            (other, alice, "a2"),
            (other, bob, "b2"),
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    total = 4 * batches * 4
    for node in (store, other):
        assert node.log_size(LOG) == total
        assert node.log_size(AUDIT_LOG) == 4 * batches
    leaves = store.leaves(LOG, 0, total + 10)
    assert [index for index, _ in leaves] == list(range(total))
    assert sorted(leaf for _, leaf in leaves) == sorted(made)
    hashes = [SHA3_256.hash_leaf(leaf) for _, leaf in leaves]
    assert tree_root(SHA3_256, other.nodes(LOG), total) == merkle_root(SHA3_256, hashes)
    audit = store.audit_entries(limit=1000)
    assert [index for index, _ in audit] == list(range(4 * batches))
    audit_hashes = [SHA3_256.hash_leaf(leaf) for _, leaf in audit]
    assert tree_root(SHA3_256, store.nodes(AUDIT_LOG), 4 * batches) == merkle_root(
        SHA3_256, audit_hashes
    )
    # each reading sits at the index its leaf was hashed at
    by_index = {r.index: r for r in store.readings_in_log(LOG, 0, total)}
    assert all(by_index[i].device == made[leaf] for i, leaf in leaves)
    assert len(store.readings(ReadingQuery(limit=1000))) == total


# the unit of work itself, as the Recorder drives it


def test_add_messages_gives_ids_and_none_for_a_payload_already_delivered(
    store: Store, alice: User
) -> None:
    kept = pmu_message(alice, "m1", T0, [("v", "1")])
    refused = rejected_message("alice", b"bad", ["malformed"])
    with store.transaction() as tx:
        first = tx.add_messages([kept, refused, kept, refused])
    assert first[0] is not None and first[1] is not None and first[3] is not None
    assert first[2] is None
    assert len({first[0], first[1], first[3]}) == 3
    with store.transaction() as tx:
        assert tx.add_messages([kept]) == [None]
        assert tx.add_messages([]) == []
    assert store.recorded({("alice", kept.digest), ("alice", refused.digest)}) == {
        ("alice", kept.digest),
        ("alice", refused.digest),
    }


def test_a_transaction_that_raises_writes_nothing(store: Store, alice: User) -> None:
    record = pmu_message(alice, "m1", T0, [("v", "1")])
    refused = rejected_message("alice", b"bad", ["malformed"])

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), store.transaction() as tx:
        (message_id, refused_id) = tx.add_messages([record, refused])
        assert message_id is not None and refused_id is not None
        tx.add_rejections([(refused_id, "alice", "malformed")])
        size = tx.lock_log(LOG)
        assert size == 0
        raise Abandon
    assert store.recorded({("alice", record.digest), ("alice", refused.digest)}) == set()
    assert all_rejections(store) == []
    assert store.raw_messages(0, 10) == []
    # the store takes the same messages afterwards
    assert save(store, [record, refused]) == SaveResult(2, 0, 1, 1)
