"""Proofs, consistency proofs and the seed's Data Certification view, from the store.

Everything here reads O(log n) stored node hashes per proof, in one query
(`with_nodes`); nothing recomputes a subtree of the log.
"""

from __future__ import annotations

from typing import Any

from platone_bal.domain.merkle import (
    SHA3_256,
    NodeReader,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    tree_root,
    with_nodes,
)
from platone_bal.domain.proof import build_bundle
from platone_bal.ports import Store, StoredReading


class NotYetCertified(LookupError):
    """No signed checkpoint covers the reading yet (it arrived under a second ago)."""


def proof_bundle(store: Store, reading: StoredReading) -> dict[str, Any]:
    return leaf_proof(store, reading.log, reading.index, f"reading {reading.id}")


def leaf_proof(store: Store, log: str, index: int, what: str) -> dict[str, Any]:
    """The §6 proof bundle of the leaf at `index` of `log` (a reading's, a set point's or
    an answer's); NotYetCertified until a signed checkpoint covers it."""
    signed = store.checkpoint_covering(log, index)
    leaf = store.leaf_bytes(log, index)
    if signed is None or leaf is None:
        raise NotYetCertified(f"{what} has no signed checkpoint yet")
    size = signed.checkpoint.size
    path = with_nodes(
        store.nodes(log), lambda nodes: inclusion_proof(SHA3_256, nodes, index, size), log
    )
    return build_bundle(leaf, index, signed, path, store.anchor(log, size))


def consistency(store: Store, log: str, first: int, second: int) -> dict[str, Any]:
    """RFC 9162 consistency proof between two sizes of the log, with both roots."""
    size = store.log_size(log)
    if not 0 < first <= second <= size:
        raise ValueError(f"need 0 < from <= to <= {size} (the log's size)")

    def compute(nodes: NodeReader) -> tuple[bytes, bytes, list[bytes]]:
        return (
            tree_root(SHA3_256, nodes, first),
            tree_root(SHA3_256, nodes, second),
            consistency_proof(SHA3_256, nodes, first, second),
        )

    first_root, second_root, proof = with_nodes(store.nodes(log), compute, log)
    return {
        "log": log,
        "from": first,
        "to": second,
        "from_root": "0x" + first_root.hex(),
        "to_root": "0x" + second_root.hex(),
        "proof": ["0x" + h.hex() for h in proof],
    }


def dataset_certification(
    store: Store, readings: list[StoredReading], dataset: dict[str, Any]
) -> dict[str, Any]:
    """The seed's Data Certification of a dataset (ARCHITECTURE §6).

    `hashedData` is the Merkle root, same hashing as the log, of the dataset's leaf
    hashes in log order; `timestamp` and `transactionHash` are those of the first anchor
    that covers every reading of the dataset (null until there is one).
    """
    ordered = sorted(readings, key=lambda r: (r.log, r.index))
    leaf_hashes = []
    for reading in ordered:
        leaf = store.leaf_bytes(reading.log, reading.index)
        assert leaf is not None
        leaf_hashes.append(SHA3_256.hash_leaf(leaf))
    anchor = None
    logs = {r.log for r in ordered}
    if len(logs) == 1:
        (log,) = logs
        highest = ordered[-1].index
        covering = store.checkpoint_covering(log, highest)
        if covering is not None:
            anchor = store.anchor(log, covering.checkpoint.size)
    owners = sorted({r.owner for r in ordered})
    return {
        "hashedData": "0x" + merkle_root(SHA3_256, leaf_hashes).hex(),
        "owner": owners[0] if len(owners) == 1 else owners,
        "timestamp": anchor.time if anchor else None,
        "dataset": {**dataset, "readings": len(ordered)},
        "transactionHash": anchor.tx if anchor else None,
        "size": anchor.size if anchor else None,
    }
