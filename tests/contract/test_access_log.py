"""AccessLogStore: bal-audit written through the Recorder, searched by who acted and
whose data it was; and PositionStore, how far egress has republished each log."""

from __future__ import annotations

from platone_bal.domain.audit import AUDIT_LOG, AuditEntry
from platone_bal.domain.readings import format_time
from platone_bal.ports import Store
from platone_bal.services.recorder import Recorder
from tests.contract.builders import RECEIVED, entry, minutes


def append(store: Store, *entries: AuditEntry) -> int:
    return Recorder(store).append_audit(entries)


def indices(rows: list[tuple[int, bytes]]) -> list[int]:
    return [index for index, _ in rows]


def test_append_returns_the_new_size(store: Store) -> None:
    assert append(store, entry("alice", "alice")) == 1
    assert append(store, entry("carol", "alice"), entry("carol", "bob", "alice")) == 3
    assert append(store) == 3
    assert store.log_size(AUDIT_LOG) == 3


def test_entries_are_stored_as_their_leaf_bytes(store: Store) -> None:
    written = [entry("carol", "alice", count=n, at=RECEIVED + minutes(n)) for n in range(5)]
    append(store, *written[:2])
    append(store, *written[2:])
    assert store.audit_entries() == [(n, e.leaf_bytes()) for n, e in enumerate(written)]
    assert store.audit_entries(after=1, limit=2) == [
        (2, written[2].leaf_bytes()),
        (3, written[3].leaf_bytes()),
    ]
    assert store.audit_entries(after=4) == []
    assert indices(store.audit_entries(limit=3)) == [0, 1, 2]


def test_search_by_who_includes_their_platform_clients(store: Store) -> None:
    append(
        store,
        entry("alice", "alice"),  # 0
        entry("alice via alice-dso", "alice"),  # 1: alice's platform
        entry("alicex", "bob"),  # 2: another user whose name starts alike
        entry("bob via alice", "bob"),  # 3: a client named like her is not hers
        entry("carol", "alice"),  # 4
        entry("alice via ops.erp-2", "bob"),  # 5
        entry("alice-two via x", "bob"),  # 6
    )
    assert indices(store.audit_entries(who="alice")) == [0, 1, 5]
    assert indices(store.audit_entries(who="alicex")) == [2]
    assert indices(store.audit_entries(who="bob")) == [3]
    assert indices(store.audit_entries(who="carol")) == [4]
    assert indices(store.audit_entries(who="alice", after=1)) == [5]
    assert indices(store.audit_entries(who="alice", limit=2)) == [0, 1]
    assert store.audit_entries(who="dave") == []


def test_search_by_producer_matches_whole_names(store: Store) -> None:
    append(
        store,
        entry("carol", "alice"),  # 0
        entry("carol", "bob", "alice"),  # 1
        entry("carol", "bob"),  # 2
        entry("carol", "alice2"),  # 3
        entry("carol"),  # 4: concerns no producer
        entry("admin", "al", "ice"),  # 5
    )
    assert indices(store.audit_entries(producer="alice")) == [0, 1]
    assert indices(store.audit_entries(producer="bob")) == [1, 2]
    assert indices(store.audit_entries(producer="alice2")) == [3]
    assert indices(store.audit_entries(producer="al")) == [5]
    assert indices(store.audit_entries(producer="alice", after=0)) == [1]
    assert store.audit_entries(producer="carol") == []


def test_search_by_who_and_producer_matches_either(store: Store) -> None:
    append(
        store,
        entry("alice", "alice"),  # 0: both
        entry("carol", "alice"),  # 1: her data
        entry("alice via dso", "bob"),  # 2: her platform
        entry("carol", "bob"),  # 3: neither
        entry("bob", "bob", "alice"),  # 4: her data
    )
    assert indices(store.audit_entries(who="alice", producer="alice")) == [0, 1, 2, 4]
    assert indices(store.audit_entries(who="alice", producer="alice", after=1, limit=2)) == [2, 4]
    assert indices(store.audit_entries(who="carol", producer="bob")) == [1, 2, 3, 4]


def test_the_columns_beside_each_entry(store: Store) -> None:
    written = [
        entry("alice via dso", "bob", "alice", action="proof.read", at=RECEIVED),
        entry("admin", action="users.list", at=RECEIVED + minutes(1)),
        entry("carol", "alice", action="grant.accepted", at=RECEIVED + minutes(2)),
    ]
    append(store, *written)
    columns = store.audit_columns(-1, 10)
    assert [(i, t, w, a) for i, t, w, a, _ in columns] == [
        (n, format_time(e.time), e.who, e.action) for n, e in enumerate(written)
    ]
    assert [p.split() for *_, p in columns] == [["alice", "bob"], [], ["alice"]]
    assert [i for i, *_ in store.audit_columns(0, 1)] == [1]
    assert store.audit_columns(2, 10) == []


# egress positions


def test_egress_positions(store: Store) -> None:
    assert store.egress_position("bal-main") == 0
    store.set_egress_position("bal-main", 17)
    store.set_egress_position("bal-setpoints", 3)
    assert store.egress_position("bal-main") == 17
    store.set_egress_position("bal-main", 2**40)
    assert store.egress_position("bal-main") == 2**40
    store.set_egress_position("bal-main", 5)  # set, not max: the caller decides
    assert store.egress_position("bal-main") == 5
    assert store.egress_position("bal-setpoints") == 3
    assert store.egress_position("bal-other") == 0
