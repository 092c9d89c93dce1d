"""One sequencer at a time (Trillian's split) on every backend: nodes that do not lead
queue their leaves; the leader gives them indices, rows and tree nodes, fenced by its
lease. Indices stay contiguous, each leaf is logged once, and the audit passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.leaf import Source, leaf_bytes
from platone_bal.domain.messages import AnswerRecord, MessageRecord
from platone_bal.domain.setpoints import SETPOINT_LOG, Answer, SetPointRequest
from platone_bal.domain.users import User
from platone_bal.ports import Fence, LeaseLost, Store
from platone_bal.services.audit import audit_log
from platone_bal.services.recorder import Recorder
from platone_bal.services.setpoints import SetPointService
from tests.contract.builders import LOG, RECEIVED, T0, entry, make_device, minutes, pmu_message

LEASE = "leader"


def leader_of(store: Store, holder: str) -> Fence:
    token = store.take_lease(LEASE, holder, 30)
    assert token is not None
    return Fence(LEASE, holder, token)


def follower(store: Store) -> Recorder:
    return Recorder(store, leader=lambda: None)


def batch(producer: User, start: int, count: int, readings: int = 2) -> list[MessageRecord]:
    return [
        pmu_message(producer, "pmu-1", T0 + minutes(n), [("v", str(n))] * readings)
        for n in range(start, start + count)
    ]


def test_queued_leaves_wait_for_the_leader_then_join_the_log_in_order(
    store: Store, alice: User
) -> None:
    fence = leader_of(store, "node-a")
    leader = Recorder(store, leader=lambda: fence)
    queued = batch(alice, 0, 3)
    result = follower(store).save(queued, LOG)
    assert (result.messages, result.readings) == (3, 6)
    # acknowledged: stored messages, leaves waiting; nothing in the log yet
    assert store.log_size(LOG) == 0 and store.queued_leaves() == 6
    leader.save(batch(alice, 3, 2), LOG)  # the leader's own batch: indices at once
    assert store.log_size(LOG) == 4
    assert leader.sequence(fence, limit=4) == {LOG: 4}
    assert leader.sequence(fence, limit=100) == {LOG: 2}
    assert leader.sequence(fence, limit=100) == {}
    assert store.queued_leaves() == 0 and store.log_size(LOG) == 10
    stored = store.readings_in_log(LOG, 0, 100)
    assert [r.index for r in stored] == list(range(10))
    leaves = {item.leaf_bytes for record in queued for item in record.readings}
    assert {store.leaf_bytes(LOG, r.index) for r in stored[4:]} == leaves
    report = audit_log(store, LOG, None)
    assert report.ok, report.problem


def test_a_duplicate_delivered_to_another_node_is_queued_once(store: Store, alice: User) -> None:
    fence = leader_of(store, "node-a")
    records = batch(alice, 0, 2)
    follower(store).save(records, LOG)
    again = follower(store).save([replace(r) for r in records], LOG)
    assert (again.messages, again.duplicates, again.readings) == (0, 2, 0)
    Recorder(store, leader=lambda: fence).sequence(fence, 100)
    assert store.log_size(LOG) == 4


def test_a_stale_leader_writes_nothing_and_its_batch_goes_to_the_queue(
    open_store: Callable[[], Store], alice: User
) -> None:
    store = open_store()
    old = Fence(LEASE, "node-a", store.take_lease(LEASE, "node-a", 0.2) or 0)
    follower(store).save(batch(alice, 0, 1), LOG)
    time.sleep(0.3)
    new = leader_of(store, "node-b")
    stale = Recorder(store, leader=lambda: old)  # it has not noticed yet
    with pytest.raises(LeaseLost):
        stale.sequence(old, 100)
    assert store.queued_leaves() == 2 and store.log_size(LOG) == 0
    stale.save(batch(alice, 1, 1), LOG)  # refused inline: queued for node-b instead
    assert store.queued_leaves() == 4 and store.log_size(LOG) == 0
    assert Recorder(store).sequence(new, 100) == {LOG: 4}
    assert [r.index for r in store.readings_in_log(LOG, 0, 10)] == [0, 1, 2, 3]


def test_access_entries_and_set_point_answers_are_sequenced_into_their_logs(
    store: Store, alice: User
) -> None:
    store.add_device(make_device("alice", "ln-1", DeviceKind.LIGHT_NODE))
    setpoint = SetPointService(store, lambda: RECEIVED).issue(
        SetPointRequest("alice", "ln-1", "p", "1", None, RECEIVED, RECEIVED + timedelta(hours=1)),
        "admin",
    )
    fence = leader_of(store, "node-a")
    queue = follower(store)
    assert queue.append_audit([entry("carol", "alice"), entry("bob", "alice")]) is None
    answer = Answer(setpoint.index, b"\x01" * 32, "applied", RECEIVED)
    leaf = answer.leaf(
        producer="alice", owner=alice.wallet, device="ln-1", signer="0xdef",
        source=Source("signed-envelope", "ab" * 32, RECEIVED), salt="33" * 16,
    )  # fmt: skip
    reply = replace(
        batch(alice, 0, 1)[0],
        readings=[],
        answers=[AnswerRecord(setpoint.id, leaf, leaf_bytes(leaf))],
    )
    queue.save([reply], LOG)
    assert store.queued_leaves() == 3
    grown = Recorder(store).sequence(fence, 100)
    assert grown == {SETPOINT_LOG: 1, AUDIT_LOG: 2}
    answered = store.setpoint(setpoint.id)
    assert answered is not None and (answered.status, answered.answer_index) == ("applied", 1)
    assert [who for _, _, who, _, _ in store.audit_columns(-1, 10)] == ["carol", "bob"]
    for log in (AUDIT_LOG, SETPOINT_LOG):
        report = audit_log(store, log, None)
        assert report.ok, report.problem
