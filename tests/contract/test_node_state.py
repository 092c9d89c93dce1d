"""What the nodes share (first value kept) and their leases (one holder, fenced), on
every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from platone_bal.ports import Fence, LeaseLost, Store, StoreUnavailable

LEASE = "sequencer"


def test_the_first_value_put_is_kept_and_seen_by_every_node(
    open_store: Callable[[], Store],
) -> None:
    first, second = open_store(), open_store()
    assert first.node_value("keystore/log-signer") is None
    assert first.put_node_value("keystore/log-signer", "one") == "one"
    assert second.put_node_value("keystore/log-signer", "two") == "one"
    assert second.node_value("keystore/log-signer") == "one"
    assert second.node_value("keystore/anchorer") is None


def test_one_holder_at_a_time_and_a_new_token_for_each_new_holder(store: Store) -> None:
    assert store.take_lease(LEASE, "node-a", 30) == 1
    assert store.take_lease(LEASE, "node-b", 30) is None
    assert store.take_lease(LEASE, "node-a", 30) == 1  # renewed: the same term
    assert store.take_lease("checkpointer", "node-b", 30) == 1  # leases are independent
    store.release_lease(LEASE, "node-b")  # not its lease: nothing happens
    assert store.take_lease(LEASE, "node-b", 30) is None
    store.release_lease(LEASE, "node-a")
    assert store.take_lease(LEASE, "node-b", 30) == 2
    assert store.take_lease(LEASE, "node-a", 30) is None


def test_an_expired_lease_is_taken_over_and_its_old_holder_can_no_longer_write(
    store: Store,
) -> None:
    assert store.take_lease(LEASE, "node-a", 0.2) == 1
    with store.transaction() as tx:
        tx.check_lease(LEASE, "node-a", 1)
    time.sleep(0.3)
    with pytest.raises(LeaseLost), store.transaction() as tx:  # expired, not yet taken
        tx.check_lease(LEASE, "node-a", 1)
    assert store.take_lease(LEASE, "node-b", 30) == 2
    with pytest.raises(LeaseLost), store.transaction() as tx:
        tx.check_lease(LEASE, "node-a", 1)
    with pytest.raises(LeaseLost), store.transaction() as tx:
        tx.check_lease(LEASE, "node-a", 2)  # the token alone does not make a leader
    with store.transaction() as tx:
        tx.check_lease(LEASE, "node-b", 2)
    assert store.take_lease(LEASE, "node-a", 30) is None
    store.release_lease(LEASE, "node-b")
    assert store.take_lease(LEASE, "node-a", 30) == 3  # back again: a new term


def test_a_lease_does_not_change_hands_during_its_holders_fenced_write(
    open_store: Callable[[], Store],
) -> None:
    """The holder checked its lease in a transaction, then stalled past the expiry: the
    next node takes over only after that transaction ended, never during it."""
    leader, other = open_store(), open_store()
    assert leader.take_lease(LEASE, "node-a", 0.3) == 1
    checked = threading.Event()
    ended_at: list[float] = []

    def stalled_leader() -> None:
        with leader.transaction() as tx:
            tx.check_lease(LEASE, "node-a", 1)
            checked.set()
            time.sleep(1.5)  # well past the lease's 0.3 s and the takeover's lock wait
            ended_at.append(time.monotonic())

    thread = threading.Thread(target=stalled_leader)
    thread.start()
    assert checked.wait(10)
    time.sleep(0.4)  # the lease has expired by the database's clock
    token = None
    while token is None:
        try:
            token = other.take_lease(LEASE, "node-b", 30)
        except StoreUnavailable:  # PostgreSQL: the row is held by the leader's write
            continue
    taken_at = time.monotonic()
    thread.join()
    assert token == 2
    assert ended_at and taken_at > ended_at[0]


def test_a_leaders_other_writes_are_fenced_too(store: Store) -> None:
    """Checkpoints, anchors, the egress position and set point delivery: written with
    a fence only while its lease holds."""
    from tests.contract.builders import make_anchor, signed

    old = Fence(LEASE, "node-a", store.take_lease(LEASE, "node-a", 0.2) or 0)
    store.add_checkpoint(signed("bal-main", 1), old)
    store.set_egress_position("bal-main", 1, old)
    time.sleep(0.3)
    new = Fence(LEASE, "node-b", store.take_lease(LEASE, "node-b", 30) or 0)
    writes = [
        lambda fence: store.add_checkpoint(signed("bal-main", 2), fence),
        lambda fence: store.add_anchor(make_anchor("bal-main", 2), fence),
        lambda fence: store.set_egress_position("bal-main", 2, fence),
        lambda fence: store.mark_delivered(1, "2026-12-01T00:00:00Z", fence),
    ]
    for write in writes:
        with pytest.raises(LeaseLost):
            write(old)
    assert store.latest_checkpoint("bal-main").checkpoint.size == 1  # type: ignore[union-attr]
    assert store.egress_position("bal-main") == 1
    for write in writes:
        write(new)
    assert store.latest_checkpoint("bal-main").checkpoint.size == 2  # type: ignore[union-attr]
    assert store.egress_position("bal-main") == 2
