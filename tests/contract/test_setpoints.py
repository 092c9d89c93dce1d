"""SetPointStore: set points of bal-setpoints, issued through `SetPointService` (the log's
append is the shared `LogAppender`), delivered, answered and expired, on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.leaf import Source, leaf_bytes
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.readings import format_time
from platone_bal.domain.setpoints import SETPOINT_LOG, Answer, InvalidSetPoint, SetPointRequest
from platone_bal.domain.users import User
from platone_bal.ports import Store
from platone_bal.services.log_appender import LogAppender
from platone_bal.services.setpoints import SetPointService
from tests.contract.builders import make_device

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def request(device: str = "ln-1", minutes: int = 60, value: str = "3.5") -> SetPointRequest:
    return SetPointRequest(
        "alice", device, "activePowerLimit", value, "kW", NOW, NOW + timedelta(minutes=minutes)
    )


@pytest.fixture
def service(store: Store, alice: User) -> SetPointService:
    store.add_device(make_device("alice", "ln-1", DeviceKind.LIGHT_NODE))
    store.add_device(make_device("alice", "ln-2", DeviceKind.LIGHT_NODE))
    return SetPointService(store, lambda: NOW)


def test_issued_set_points_are_leaves_of_their_own_log(
    store: Store, service: SetPointService, alice: User
) -> None:
    first = service.issue(request(), "admin")
    second = service.issue(request("ln-2", value="-1.25"), "dso-platform")
    assert (first.index, second.index, store.log_size(SETPOINT_LOG)) == (0, 1, 2)
    assert store.log_size("bal-main") == 0
    assert (first.status, first.issuer, first.value, first.unit) == ("issued", "admin", "3.5", "kW")
    assert (first.start, first.end) == (format_time(NOW), format_time(NOW + timedelta(hours=1)))
    assert first.issued == format_time(NOW) and first.delivered is None
    leaf = store.leaf_bytes(SETPOINT_LOG, 1)
    assert leaf is not None
    expected = request("ln-2", value="-1.25").leaf(
        owner=alice.wallet,
        issuer="dso-platform",
        time=NOW,
        salt=json.loads(leaf)["salt"],
    )
    assert leaf == leaf_bytes(expected)
    assert store.nodes(SETPOINT_LOG).node(0, 1) == SHA3_256.hash_leaf(leaf)
    assert store.setpoint(second.id) == second and store.setpoint_at(1) == second
    assert store.setpoint_at(2) is None and store.setpoint(2**70) is None
    assert store.leaf_bytes(SETPOINT_LOG, 2) is None


def test_a_set_point_needs_a_producer_and_its_device(service: SetPointService) -> None:
    with pytest.raises(InvalidSetPoint, match="no device 'ln-9'"):
        service.issue(request("ln-9"), "admin")
    with pytest.raises(InvalidSetPoint, match="no producer 'bob'"):
        service.issue(
            SetPointRequest("bob", "ln-1", "p", "1", None, NOW, NOW + timedelta(hours=1)), "admin"
        )


def test_listing_delivery_answer_and_expiry(
    store: Store, service: SetPointService, bob: User
) -> None:
    store.add_device(make_device("bob", "ln-1", DeviceKind.LIGHT_NODE))
    one = service.issue(request(), "admin")
    two = service.issue(request("ln-2", minutes=1), "admin")
    theirs = service.issue(
        SetPointRequest("bob", "ln-1", "p", "1", None, NOW, NOW + timedelta(hours=1)), "admin"
    )
    assert [s.id for s in store.setpoints()] == [one.id, two.id, theirs.id]
    assert [s.id for s in store.setpoints("alice")] == [one.id, two.id]
    assert [s.id for s in store.setpoints("alice", after=one.id)] == [two.id]
    assert [s.id for s in store.setpoints(limit=1)] == [one.id]
    assert [s.id for s in store.setpoints(limit=2, newest_first=True)] == [theirs.id, two.id]
    assert [s.id for s in store.setpoints("alice", limit=5, newest_first=True)] == [two.id, one.id]
    # only what a signed checkpoint covers goes out
    assert [s.id for s in store.setpoints_to_deliver(below=2)] == [one.id, two.id]
    store.mark_delivered(one.id, format_time(NOW + timedelta(seconds=1)))
    delivered = store.setpoint(one.id)
    assert delivered is not None and (delivered.status, delivered.delivered) == (
        "delivered",
        format_time(NOW + timedelta(seconds=1)),
    )
    assert [s.id for s in store.setpoints_to_deliver(below=3)] == [two.id, theirs.id]

    # the Light Node's answer, logged after the set point
    answer = Answer(one.index, b"\x01" * 32, "applied", NOW + timedelta(seconds=2))
    answer_leaf = answer.leaf(
        producer="alice", owner="0xabc", device="ln-1", signer="0xdef",
        source=Source("signed-envelope", "ab" * 32, NOW + timedelta(seconds=3)), salt="33" * 16,
    )  # fmt: skip
    raw = leaf_bytes(answer_leaf)
    with store.transaction() as tx:
        index = LogAppender(SHA3_256).append(tx, SETPOINT_LOG, [SHA3_256.hash_leaf(raw)])
        tx.add_setpoint_answer(index, one.id, answer_leaf, raw)
    answered = store.setpoint(one.id)
    assert answered is not None
    assert (answered.status, answered.answer_index, answered.answer_status) == (
        "applied",
        3,
        "applied",
    )
    assert (answered.answer_time, answered.answer_signer) == (answer_leaf["time"], "0xdef")
    assert store.leaf_bytes(SETPOINT_LOG, 3) == raw
    assert store.setpoint_at(3) is None  # an answer is no set point

    # past its end without an answer: expired; answered ones keep their answer
    assert store.expire_setpoints(format_time(NOW + timedelta(minutes=2))) == 1
    expired = store.setpoint(two.id)
    assert expired is not None and expired.status == "expired"
    assert store.expire_setpoints(format_time(NOW + timedelta(hours=2))) == 1  # bob's
    assert {s.status for s in store.setpoints()} == {"applied", "expired"}
    assert store.setpoints_to_deliver(below=10) == []


def test_bal_audit_rebuilds_the_set_point_log(store: Store, service: SetPointService) -> None:
    """`bal audit --log bal-setpoints`: every leaf against the row it is or answers, the
    tree, the checkpoints; on every backend."""
    from platone_bal.services.audit import audit_log
    from platone_bal.services.checkpointer import Checkpointer

    one = service.issue(request(), "admin")
    service.issue(request("ln-2"), "admin")
    answer = Answer(one.index, b"\x02" * 32, "refused", NOW + timedelta(seconds=2))
    answer_leaf = answer.leaf(
        producer="alice", owner="0xabc", device="ln-1", signer="0xdef",
        source=Source("signed-envelope", "cd" * 32, NOW), salt="44" * 16,
    )  # fmt: skip
    raw = leaf_bytes(answer_leaf)
    with store.transaction() as tx:
        index = LogAppender(SHA3_256).append(tx, SETPOINT_LOG, [SHA3_256.hash_leaf(raw)])
        tx.add_setpoint_answer(index, one.id, answer_leaf, raw)
    Checkpointer(
        store, log_id=SETPOINT_LOG, private_key=b"\x07" * 32, clock=lambda: NOW
    ).checkpoint_now()
    report = audit_log(store, SETPOINT_LOG, None)
    assert report.problem is None, report.problem
    assert (report.size, report.readings, report.checkpoints) == (3, 3, 1)
