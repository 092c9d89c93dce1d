"""CheckpointStore: signed checkpoints and the anchors that put them on chain."""

from __future__ import annotations

from dataclasses import replace

from platone_bal.domain.checkpoint import verify_signature
from platone_bal.ports import Store
from tests.contract.builders import CONTRACT, RECEIVED, make_anchor, minutes, signed, tx_of


def sizes(checkpoints: list) -> list[int]:  # type: ignore[type-arg]
    return [c.checkpoint.size for c in checkpoints]


def test_a_checkpoint_is_stored_as_signed(store: Store) -> None:
    original = signed("bal-main", 7)
    store.add_checkpoint(original)
    stored = store.checkpoint("bal-main", 7)
    assert stored == original
    assert stored is not None
    verify_signature(stored)  # the very bytes that were signed
    assert stored.checkpoint.to_bytes() == original.checkpoint.to_bytes()


def test_no_checkpoints_yet(store: Store) -> None:
    assert store.latest_checkpoint("bal-main") is None
    assert store.checkpoint("bal-main", 1) is None
    assert store.checkpoints("bal-main") == []
    assert store.latest_checkpoints("bal-main", 5) == []
    assert store.checkpoint_covering("bal-main", 0) is None


def test_adding_a_checkpoint_twice_is_a_no_op(store: Store) -> None:
    first = signed("bal-main", 3, at=RECEIVED)
    store.add_checkpoint(first)
    store.add_checkpoint(first)
    # another signing of the same size (a second node's checkpointer) keeps the first
    store.add_checkpoint(signed("bal-main", 3, at=RECEIVED + minutes(1)))
    assert store.checkpoints("bal-main") == [first]
    assert store.checkpoint("bal-main", 3) == first


def test_checkpoints_in_size_order_and_per_log(store: Store) -> None:
    for size in (5, 1, 9, 3, 7):
        store.add_checkpoint(signed("bal-main", size))
    store.add_checkpoint(signed("bal-audit", 4))
    assert sizes(store.checkpoints("bal-main")) == [1, 3, 5, 7, 9]
    assert sizes(store.checkpoints("bal-main", after=3)) == [5, 7, 9]
    assert sizes(store.checkpoints("bal-main", after=3, limit=2)) == [5, 7]
    assert store.checkpoints("bal-main", after=9) == []
    assert sizes(store.checkpoints("bal-audit")) == [4]
    assert store.latest_checkpoint("bal-main") == signed("bal-main", 9)
    assert store.latest_checkpoint("bal-audit") == signed("bal-audit", 4)
    assert sizes(store.latest_checkpoints("bal-main", 3)) == [9, 7, 5]
    assert sizes(store.latest_checkpoints("bal-main", 10)) == [9, 7, 5, 3, 1]
    assert store.latest_checkpoints("bal-main", 1) == [signed("bal-main", 9)]
    assert store.checkpoint("bal-main", 4) is None
    assert store.checkpoint("bal-audit", 5) is None


def test_the_checkpoint_that_proves_a_leaf(store: Store) -> None:
    """The smallest anchored checkpoint covering the leaf, else the newest."""
    for size in (3, 5, 9):
        store.add_checkpoint(signed("l", size))
    assert sizes([store.checkpoint_covering("l", 4)]) == [9]  # none anchored: the newest
    assert sizes([store.checkpoint_covering("l", 0)]) == [9]
    store.add_anchor(make_anchor("l", 5))
    assert sizes([store.checkpoint_covering("l", 4)]) == [5]
    assert sizes([store.checkpoint_covering("l", 2)]) == [5]  # smallest anchored, not 3
    assert sizes([store.checkpoint_covering("l", 5)]) == [9]  # 5 does not cover index 5
    assert store.checkpoint_covering("l", 9) is None
    store.add_anchor(make_anchor("l", 9))
    store.add_anchor(make_anchor("l", 3))
    assert sizes([store.checkpoint_covering("l", 2)]) == [3]
    assert sizes([store.checkpoint_covering("l", 3)]) == [5]
    assert sizes([store.checkpoint_covering("l", 8)]) == [9]


def test_anchors_of_other_logs_or_of_unsigned_sizes_do_not_count(store: Store) -> None:
    for size in (3, 5, 9):
        store.add_checkpoint(signed("l", size))
    store.add_anchor(make_anchor("other", 3))  # another log's anchor of the same size
    store.add_anchor(make_anchor("l", 4))  # an anchor of a size never checkpointed here
    assert sizes([store.checkpoint_covering("l", 1)]) == [9]
    assert sizes([store.checkpoint_covering("l", 3)]) == [9]
    assert store.checkpoint_covering("other", 1) is None


def test_an_anchor_is_stored_as_given(store: Store) -> None:
    anchor = make_anchor("bal-main", 12, block=987_654_321)
    store.add_anchor(anchor)
    assert store.anchor("bal-main", 12) == anchor
    assert store.anchor("bal-main", 11) is None
    assert store.anchor("other", 12) is None


def test_adding_an_anchor_twice_is_a_no_op(store: Store) -> None:
    anchor = make_anchor("bal-main", 5)
    store.add_anchor(anchor)
    store.add_anchor(anchor)
    store.add_anchor(replace(anchor, block=anchor.block + 1, tx=tx_of("again", 5)))
    assert [a for _, a in store.anchors()] == [anchor]
    assert store.latest_anchors("bal-main", 10) == [anchor]


def test_the_same_size_on_another_chain_or_contract_is_another_anchor(store: Store) -> None:
    here = make_anchor("bal-main", 5)
    elsewhere = make_anchor("bal-main", 5, chain_id=1)
    other_contract = make_anchor("bal-main", 5, contract="0x" + "ab" * 20)
    for anchor in (here, elsewhere, other_contract):
        store.add_anchor(anchor)
    assert [a for _, a in store.anchors()] == [here, elsewhere, other_contract]
    assert store.anchor("bal-main", 5) == here  # the first recorded


def test_an_anchor_by_its_transaction_in_any_case(store: Store) -> None:
    anchor = make_anchor("bal-main", 5)
    store.add_anchor(anchor)
    store.add_anchor(make_anchor("bal-main", 8))
    assert anchor.tx == anchor.tx.lower()
    assert store.anchor_by_tx(anchor.tx) == anchor
    assert store.anchor_by_tx("0x" + anchor.tx[2:].upper()) == anchor
    assert store.anchor_by_tx(anchor.tx[:20] + anchor.tx[20:].upper()) == anchor
    assert store.anchor_by_tx(tx_of("bal-main", 6)) is None
    assert store.anchor_by_tx("0x") is None


def test_the_anchor_below_a_size(store: Store) -> None:
    for size in (4, 10, 7):
        store.add_anchor(make_anchor("l", size))
    store.add_anchor(make_anchor("other", 9))
    assert store.anchor_below("l", 4) is None
    assert store.anchor_below("l", 5) == make_anchor("l", 4)
    assert store.anchor_below("l", 10) == make_anchor("l", 7)
    assert store.anchor_below("l", 11) == make_anchor("l", 10)
    assert store.anchor_below("other", 100) == make_anchor("other", 9)
    assert store.anchor_below("none", 100) is None


def test_anchors_page_by_row_id_oldest_first(store: Store) -> None:
    made = [make_anchor(log, size) for size, log in enumerate(["a", "b", "a", "a", "b", "a"], 1)]
    for anchor in made:
        store.add_anchor(anchor)
    every = store.anchors()
    assert [a for _, a in every] == made
    ids = [row_id for row_id, _ in every]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert [a for _, a in store.anchors(after=ids[1], limit=3)] == made[2:5]
    assert [a for _, a in store.anchors("a")] == [a for a in made if a.log == "a"]
    assert store.anchors("a", after=ids[2], limit=1) == [(ids[3], made[3])]
    assert store.anchors("b", after=ids[4]) == []
    assert store.anchors("c") == []
    seen, after = [], 0
    while page := store.anchors("a", after, 2):
        seen += [a for _, a in page]
        after = page[-1][0]
    assert seen == [a for a in made if a.log == "a"]


def test_the_latest_anchors_are_the_largest_first(store: Store) -> None:
    assert store.latest_anchor("l") is None
    assert store.latest_anchors("l", 3) == []
    for size in (3, 12, 1, 7, 9):
        store.add_anchor(make_anchor("l", size))
    store.add_anchor(make_anchor("other", 100))
    assert store.latest_anchor("l") == make_anchor("l", 12)
    assert [a.size for a in store.latest_anchors("l", 3)] == [12, 9, 7]
    assert [a.size for a in store.latest_anchors("l", 10)] == [12, 9, 7, 3, 1]
    assert store.latest_anchors("l", 1) == [make_anchor("l", 12)]


def test_anchor_fields_survive(store: Store) -> None:
    anchor = make_anchor("bal-main", 2**40, chain_id=2**53, block=2**48)
    store.add_anchor(anchor)
    assert store.anchor("bal-main", 2**40) == anchor
    assert store.anchor(anchor.log, anchor.size).contract == CONTRACT  # type: ignore[union-attr]
