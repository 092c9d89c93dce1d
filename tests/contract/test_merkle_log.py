"""LogStore and the TreeWriter: the stored subtrees give the roots and proofs of an
in-memory tree of the same leaf bytes, read node by node or all at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.merkle import (
    SHA3_256,
    Frontier,
    NodeReader,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    tree_root,
    verify_consistency,
    verify_inclusion,
    with_nodes,
)
from platone_bal.domain.users import User
from platone_bal.ports import Store
from platone_bal.services.recorder import Recorder
from tests.contract.builders import (
    LOG,
    T0,
    batch_reader,
    entry,
    leaves_of,
    memory_tree,
    minutes,
    pmu_message,
    save,
)

BATCHES = (1, 2, 3, 1, 5, 7, 1, 4)
"""Readings per batch: 24 leaves, appended at sizes of every parity."""


def root_at(size: int) -> Callable[[NodeReader], bytes]:
    return lambda reader: tree_root(SHA3_256, reader, size)


def path_of(index: int, size: int) -> Callable[[NodeReader], list[bytes]]:
    return lambda reader: inclusion_proof(SHA3_256, reader, index, size)


def consistency_of(first: int, second: int) -> Callable[[NodeReader], list[bytes]]:
    return lambda reader: consistency_proof(SHA3_256, reader, first, second)


@pytest.fixture
def leaves(store: Store, alice: User) -> list[bytes]:
    """Leaf bytes of bal-main, saved in batches of `BATCHES` readings."""
    records = []
    for n, count in enumerate(BATCHES):
        batch = [
            pmu_message(alice, "m1", T0 + minutes(n), [(f"q{k}", str(n)) for k in range(count)])
        ]
        save(store, batch)
        records += batch
    return leaves_of(records)


def test_an_unknown_log_is_empty(store: Store) -> None:
    assert store.log_size("bal-nothing") == 0
    assert tree_root(SHA3_256, store.nodes("bal-nothing"), 0) == SHA3_256.empty_root()
    assert batch_reader(store, "bal-nothing").nodes_at({(0, 0), (1, 0)}) == {}
    with pytest.raises(KeyError):
        store.nodes("bal-nothing").node(0, 0)


def test_roots_at_every_size_are_the_in_memory_roots(store: Store, leaves: list[bytes]) -> None:
    n = len(leaves)
    assert store.log_size(LOG) == n == sum(BATCHES)
    reader = store.nodes(LOG)
    hashes = [SHA3_256.hash_leaf(leaf) for leaf in leaves]
    for size in range(n + 1):
        expected = merkle_root(SHA3_256, hashes[:size])
        assert tree_root(SHA3_256, reader, size) == expected, size
        assert with_nodes(batch_reader(store, LOG), root_at(size)) == expected, size


def test_inclusion_proofs_are_the_in_memory_ones(store: Store, leaves: list[bytes]) -> None:
    n = len(leaves)
    memory = memory_tree(leaves)
    stored, batch = store.nodes(LOG), batch_reader(store, LOG)
    for size in (1, 2, 3, 7, 8, 13, 16, n):
        root = tree_root(SHA3_256, memory, size)
        for index in range(size):
            expected = inclusion_proof(SHA3_256, memory, index, size)
            assert inclusion_proof(SHA3_256, stored, index, size) == expected, (index, size)
            fetched = with_nodes(batch, path_of(index, size))
            assert fetched == expected, (index, size)
            leaf_hash = SHA3_256.hash_leaf(leaves[index])
            assert verify_inclusion(SHA3_256, index, size, leaf_hash, fetched, root)


def test_consistency_proofs_are_the_in_memory_ones(store: Store, leaves: list[bytes]) -> None:
    n = len(leaves)
    memory = memory_tree(leaves)
    stored, batch = store.nodes(LOG), batch_reader(store, LOG)
    for first in range(1, n + 1):
        for second in (first, first + 1, 16, n):
            if not first <= second <= n:
                continue
            expected = consistency_proof(SHA3_256, memory, first, second)
            assert consistency_proof(SHA3_256, stored, first, second) == expected
            fetched = with_nodes(batch, consistency_of(first, second))
            assert fetched == expected, (first, second)
            assert verify_consistency(
                SHA3_256,
                first,
                second,
                tree_root(SHA3_256, memory, first),
                tree_root(SHA3_256, memory, second),
                fetched,
            )


def test_the_stored_nodes_are_exactly_the_in_memory_subtrees(
    store: Store, leaves: list[bytes]
) -> None:
    memory = memory_tree(leaves)
    n = len(leaves)
    everything = {(level, index) for level in range(6) for index in range(n + 2)}
    found = batch_reader(store, LOG).nodes_at(everything)
    assert found == memory.nodes
    for (level, index), value in memory.nodes.items():
        assert store.nodes(LOG).node(level, index) == value


def test_nodes_at_returns_exactly_the_stored_keys_asked(store: Store, leaves: list[bytes]) -> None:
    memory = memory_tree(leaves)
    n = len(leaves)
    reader = batch_reader(store, LOG)
    asked = {(0, 0), (0, n - 1), (0, n), (1, 3), (3, 2), (3, 3), (4, 0), (4, 1), (9, 0)}
    assert reader.nodes_at(asked) == {
        key: memory.nodes[key] for key in asked if key in memory.nodes
    }
    assert set(reader.nodes_at(asked)) == {(0, 0), (0, n - 1), (1, 3), (3, 2), (4, 0)}
    assert reader.nodes_at(set()) == {}
    assert reader.nodes_at([(2, 1)]) == {(2, 1): memory.nodes[2, 1]}
    # many keys at once, most of them absent
    many = {(level, index) for level in range(3) for index in range(700)}
    assert reader.nodes_at(many) == {key: v for key, v in memory.nodes.items() if key in many}
    # the nodes of one log are not another's
    assert batch_reader(store, AUDIT_LOG).nodes_at(asked) == {}
    with pytest.raises(KeyError):
        store.nodes(LOG).node(0, n)


def test_a_reader_sees_what_was_appended_after_it_was_made(
    store: Store, alice: User, leaves: list[bytes]
) -> None:
    reader = batch_reader(store, LOG)
    more = [pmu_message(alice, "m9", T0, [("v", "1")])]
    save(store, more)
    every = leaves + leaves_of(more)
    expected = merkle_root(SHA3_256, [SHA3_256.hash_leaf(leaf) for leaf in every])
    assert store.log_size(LOG) == len(every)
    assert with_nodes(reader, root_at(len(every))) == expected


def test_the_access_log_is_a_merkle_log_too(store: Store) -> None:
    recorder = Recorder(store)
    written = []
    for count in (1, 4, 2, 6):
        batch = [entry("carol", "alice", count=n) for n in range(count)]
        recorder.append_audit(batch)
        written += batch
    leaves = [e.leaf_bytes() for e in written]
    memory = memory_tree(leaves)
    size = len(leaves)
    assert store.log_size(AUDIT_LOG) == size
    assert tree_root(SHA3_256, store.nodes(AUDIT_LOG), size) == tree_root(SHA3_256, memory, size)
    for index in range(size):
        assert with_nodes(batch_reader(store, AUDIT_LOG), path_of(index, size)) == (
            inclusion_proof(SHA3_256, memory, index, size)
        )
    assert store.log_size(LOG) == 0


def test_the_tree_inside_a_transaction(store: Store, leaves: list[bytes]) -> None:
    """What `LogAppender` relies on: `lock_log` gives the size, `nodes_at` the stored
    nodes (also those written earlier in the same transaction), `set_log_size` moves
    the head; a transaction that raises leaves none of it."""
    n = len(leaves)
    memory = memory_tree(leaves)
    extra = [SHA3_256.hash_leaf(b"extra %d" % k) for k in range(3)]
    with store.transaction() as tx:
        assert tx.lock_log(LOG) == n
        keys = Frontier.edge_keys(n)
        edge = tx.nodes_at(LOG, keys)
        assert edge == {key: memory.nodes[key] for key in keys}
        frontier = Frontier(SHA3_256, n, [edge[key] for key in keys])
        nodes = frontier.extend(extra)
        tx.add_nodes(LOG, nodes)
        assert tx.nodes_at(LOG, {(0, n), (0, n + 1)}) == {
            (0, n): extra[0],
            (0, n + 1): extra[1],
        }
        tx.set_log_size(LOG, n + 3)
        root = frontier.root()
    assert store.log_size(LOG) == n + 3
    assert tree_root(SHA3_256, store.nodes(LOG), n + 3) == root

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), store.transaction() as tx:
        assert tx.lock_log(LOG) == n + 3
        keys = Frontier.edge_keys(n + 3)
        edge = tx.nodes_at(LOG, keys)
        more = Frontier(SHA3_256, n + 3, [edge[key] for key in keys])
        tx.add_nodes(LOG, more.extend([SHA3_256.hash_leaf(b"never")]))
        tx.set_log_size(LOG, n + 4)
        raise Abandon
    assert store.log_size(LOG) == n + 3
    assert batch_reader(store, LOG).nodes_at({(0, n + 3)}) == {}
    assert tree_root(SHA3_256, store.nodes(LOG), n + 3) == root


def test_nodes_of_one_level_as_stored(store: Store, leaves: list[bytes]) -> None:
    """RawStore.raw_nodes: (index, hash) of a level in [start, stop), as `bal audit` reads them."""
    memory = memory_tree(leaves)
    n = len(leaves)
    for level in range(5):
        rows = store.raw_nodes(LOG, level, 0, n)
        assert sorted(rows) == sorted(
            (index, value) for (lvl, index), value in memory.nodes.items() if lvl == level
        )
        assert all(type(index) is int and type(value) is bytes for index, value in rows)
    assert sorted(store.raw_nodes(LOG, 0, 5, 8)) == [(i, memory.nodes[0, i]) for i in range(5, 8)]
    assert store.raw_nodes(LOG, 0, n, n + 10) == []
    assert store.raw_nodes(AUDIT_LOG, 0, 0, n) == []
