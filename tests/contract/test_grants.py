"""GrantStore: grants, and the decisions that changed them on their way to the chain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from platone_bal.domain.grants import Grant, GrantStatus
from platone_bal.domain.users import Role, User
from platone_bal.ports import MAX_ROW_ID, Store, StoredDecision
from tests.contract.builders import (
    CHAIN_ID,
    CONTRACT,
    RECEIVED,
    accepted,
    add_user,
    decision_of,
    make_grant,
    minutes,
    tx_of,
    wallet_of,
)


def request(store: Store, grant: Grant) -> Grant:
    """Store a requested grant with its request decision, as the grant service does."""
    return store.add_grant(grant, decision_of(grant))


def test_a_new_grant_gets_an_id_and_its_request_decision(
    store: Store, alice: User, carol: User
) -> None:
    asked = make_grant("alice", "carol", reason="for the monthly report")
    grant = request(store, asked)
    assert grant.id > 0
    assert grant == replace(asked, id=grant.id)
    assert store.grant(grant.id) == grant
    (decision,) = store.decisions(grant.id)
    assert decision.id > 0
    assert decision.decision == replace(decision_of(asked), grant_id=grant.id)
    assert decision == StoredDecision(decision.id, decision.decision)  # not on chain yet


def test_grant_ids_grow(store: Store, alice: User, bob: User, carol: User) -> None:
    ids = [request(store, make_grant(p, "carol")).id for p in ("alice", "bob", "alice")]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [store.grant(i).producer for i in ids] == ["alice", "bob", "alice"]  # type: ignore[union-attr]


def test_a_grant_keeps_its_whole_scope(store: Store, alice: User, carol: User) -> None:
    asked = make_grant(
        "alice",
        "carol",
        devices=frozenset({"m1", "pmu:7"}),
        measurands=frozenset({"voltmagnitude", "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.72.0"}),
        since=datetime(2026, 1, 1, tzinfo=UTC),
        until=datetime(2026, 2, 1, 12, 30, 0, 500, tzinfo=UTC),
        expires=datetime(2027, 1, 1, tzinfo=UTC),
        created=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC),
    )
    grant = request(store, asked)
    assert store.grant(grant.id) == replace(asked, id=grant.id)


def test_an_empty_set_of_devices_is_not_every_device(
    store: Store, alice: User, carol: User
) -> None:
    grant = request(store, make_grant("alice", "carol", devices=frozenset(), measurands=None))
    stored = store.grant(grant.id)
    assert stored is not None
    assert stored.scope.devices == frozenset() and stored.scope.measurands is None


def test_saving_a_grant_records_the_decision_that_changed_it(
    store: Store, alice: User, carol: User
) -> None:
    grant = request(store, make_grant("alice", "carol", expires=RECEIVED + minutes(600)))
    narrowed = accepted(grant, expires=RECEIVED + minutes(60))
    store.save_grant(narrowed, decision_of(narrowed))
    assert store.grant(grant.id) == narrowed
    statuses = [d.decision.status for d in store.decisions(grant.id)]
    assert statuses == [GrantStatus.REQUESTED, GrantStatus.ACCEPTED]
    assert store.decisions(grant.id)[1].decision == decision_of(narrowed)

    revoked = narrowed.revoke("carol", RECEIVED + minutes(30), "no longer needed")
    store.save_grant(revoked)  # without a decision: only the grant changes
    assert store.grant(grant.id) == revoked
    assert len(store.decisions(grant.id)) == 2


def test_grants_of_a_user_newest_first(store: Store, alice: User, bob: User, carol: User) -> None:
    dave = add_user(store, "dave", Role.CONSUMER)
    g1 = request(store, make_grant("alice", "carol"))
    g2 = request(store, make_grant("bob", "carol"))
    g3 = request(store, make_grant("alice", dave.username))
    assert [g.id for g in store.grants_of("carol")] == [g2.id, g1.id]
    assert [g.id for g in store.grants_of("alice")] == [g3.id, g1.id]
    assert [g.id for g in store.grants_of("bob")] == [g2.id]
    assert [g.id for g in store.grants_of("dave")] == [g3.id]
    assert [g.id for g in store.grants_of(None)] == [g3.id, g2.id, g1.id]
    assert store.grants_of("nobody") == []
    assert store.grants_of("carol")[0] == g2


def test_accepted_grants(store: Store, alice: User, bob: User, carol: User) -> None:
    dave = add_user(store, "dave", Role.CONSUMER)
    requested = request(store, make_grant("alice", "carol"))
    g_alice = request(store, make_grant("alice", "carol", expires=RECEIVED + minutes(5)))
    g_bob = request(store, make_grant("bob", "carol"))
    g_dave = request(store, make_grant("bob", dave.username))
    refused = request(store, make_grant("bob", "carol"))
    for grant in (g_alice, g_bob, g_dave):
        store.save_grant(accepted(grant), decision_of(accepted(grant)))
    no = refused.refuse("bob", RECEIVED + minutes(1), "no")
    store.save_grant(no, decision_of(no))
    revoked = accepted(g_bob).revoke("bob", RECEIVED + minutes(2))
    store.save_grant(revoked, decision_of(revoked))

    # an accepted grant whose expiry passed is still listed: callers judge expiry
    assert store.accepted_grants("carol") == [accepted(g_alice)]
    assert [g.id for g in store.accepted_grants()] == [g_dave.id, g_alice.id]
    assert store.accepted_grants("dave") == [accepted(g_dave)]
    assert store.accepted_grants("alice") == []  # a producer is no consumer
    assert store.grant(requested.id) == requested


def test_pending_decisions_oldest_first_until_recorded_or_failed(
    store: Store, alice: User, carol: User
) -> None:
    grants = [request(store, make_grant("alice", "carol")) for _ in range(3)]
    yes = accepted(grants[0])
    store.save_grant(yes, decision_of(yes))
    pending = store.pending_decisions(10)
    assert [d.decision.grant_id for d in pending] == [g.id for g in grants] + [grants[0].id]
    assert [d.decision.status for d in pending][-1] is GrantStatus.ACCEPTED
    ids = [d.id for d in pending]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert store.pending_decisions(2) == pending[:2]

    store.decision_recorded(
        ids[0], "0xsig", wallet_of("carol"), tx_of("grant", 1), 42, CHAIN_ID, CONTRACT
    )
    store.decision_failed(ids[1], "execution reverted: not a party")
    assert store.pending_decisions(10) == pending[2:]

    first, second = store.decisions(grants[0].id)[0], store.decisions(grants[1].id)[0]
    assert first == replace(
        pending[0],
        signature="0xsig",
        signer=wallet_of("carol"),
        tx=tx_of("grant", 1),
        block=42,
        chain_id=CHAIN_ID,
        contract=CONTRACT,
    )
    assert second == replace(pending[1], error="execution reverted: not a party")
    assert store.pending_decisions(0) == []


def test_decisions_of_a_grant_oldest_first(store: Store, alice: User, carol: User) -> None:
    grant = request(store, make_grant("alice", "carol"))
    other = request(store, make_grant("alice", "carol"))
    yes = accepted(grant)
    store.save_grant(yes, decision_of(yes))
    gone = yes.revoke("alice", RECEIVED + minutes(5))
    store.save_grant(gone, decision_of(gone))
    decisions = store.decisions(grant.id)
    assert [d.decision.status for d in decisions] == [
        GrantStatus.REQUESTED,
        GrantStatus.ACCEPTED,
        GrantStatus.REVOKED,
    ]
    assert all(d.decision.grant_id == grant.id for d in decisions)
    assert [d.decision.decided_by for d in decisions] == ["carol", "alice", "alice"]
    assert len(store.decisions(other.id)) == 1


@pytest.mark.parametrize("grant_id", [0, -1, MAX_ROW_ID, MAX_ROW_ID + 1, 2**64, -(2**64)])
def test_ids_that_name_no_grant(store: Store, alice: User, carol: User, grant_id: int) -> None:
    request(store, make_grant("alice", "carol"))
    assert store.grant(grant_id) is None
    assert store.decisions(grant_id) == []
