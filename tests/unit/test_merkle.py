"""RFC 9162 tree hashing: the published RFC 6962 SHA-256 vectors, an exhaustive check
against the RFC's recursive definitions, and properties with SHA3-256."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platone_bal.domain.merkle import (
    SHA3_256,
    SHA256,
    Frontier,
    MemoryNodes,
    ProofError,
    TreeHasher,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    split_point,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# certificate-transparency merkle test data (RFC 6962, SHA-256)
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
             "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index from 0, tree size, audit path)
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


class CountingNodes(MemoryNodes):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return super().node(level, index)


def build(hasher: TreeHasher, leaves: list[bytes]) -> CountingNodes:
    nodes = CountingNodes()
    nodes.add(Frontier(hasher).extend(hasher.hash_leaf(leaf) for leaf in leaves))
    return nodes


# The RFC's own recursive definitions, over the full leaf list: the reference.


def ref_mth(h: TreeHasher, leaves: list[bytes]) -> bytes:
    if not leaves:
        return h.empty_root()
    if len(leaves) == 1:
        return h.hash_leaf(leaves[0])
    k = split_point(len(leaves))
    return h.hash_children(ref_mth(h, leaves[:k]), ref_mth(h, leaves[k:]))


def ref_path(h: TreeHasher, m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = split_point(len(leaves))
    if m < k:
        return [*ref_path(h, m, leaves[:k]), ref_mth(h, leaves[k:])]
    return [*ref_path(h, m - k, leaves[k:]), ref_mth(h, leaves[:k])]


def ref_subproof(h: TreeHasher, m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(h, leaves)]
    k = split_point(n)
    if m <= k:
        return [*ref_subproof(h, m, leaves[:k], whole), ref_mth(h, leaves[k:])]
    return [*ref_subproof(h, m - k, leaves[k:], False), ref_mth(h, leaves[:k])]


def hexes(values: list[bytes]) -> list[str]:
    return [value.hex() for value in values]


# RFC 6962 vectors


def test_roots_match_rfc6962_for_every_size() -> None:
    assert SHA256.empty_root().hex() == CT_ROOTS[0]
    for size in range(1, 9):
        nodes = build(SHA256, CT_LEAVES[:size])
        assert tree_root(SHA256, nodes, size).hex() == CT_ROOTS[size]
        frontier = Frontier(SHA256)
        frontier.extend(SHA256.hash_leaf(leaf) for leaf in CT_LEAVES[:size])
        assert frontier.root().hex() == CT_ROOTS[size]
        assert Frontier.load(SHA256, nodes, size).root().hex() == CT_ROOTS[size]
    assert tree_root(SHA256, build(SHA256, []), 0).hex() == CT_ROOTS[0]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    nodes = build(SHA256, CT_LEAVES)
    assert hexes(inclusion_proof(SHA256, nodes, index, size)) == path
    leaf = SHA256.hash_leaf(CT_LEAVES[index])
    root = bytes.fromhex(CT_ROOTS[size])
    proof = [bytes.fromhex(p) for p in path]
    assert verify_inclusion(SHA256, index, size, leaf, proof, root)
    assert not verify_inclusion(SHA256, index, size, leaf, proof, bytes.fromhex(CT_ROOTS[0]))


@pytest.mark.parametrize(("first", "second", "path"), CT_CONSISTENCY)
def test_consistency_vectors(first: int, second: int, path: list[str]) -> None:
    nodes = build(SHA256, CT_LEAVES)
    assert hexes(consistency_proof(SHA256, nodes, first, second)) == path
    proof = [bytes.fromhex(p) for p in path]
    first_root, second_root = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert verify_consistency(SHA256, first, second, first_root, second_root, proof)


@pytest.mark.parametrize("hasher", [SHA256, SHA3_256], ids=["sha256", "sha3_256"])
def test_every_index_and_size_pair_equals_the_rfc_definitions(hasher: TreeHasher) -> None:
    leaves = CT_LEAVES + [bytes([n]) * n for n in range(8, 20)]
    nodes = build(hasher, leaves)
    for size in range(1, len(leaves) + 1):
        root = ref_mth(hasher, leaves[:size])
        assert tree_root(hasher, nodes, size) == root
        for index in range(size):
            path = inclusion_proof(hasher, nodes, index, size)
            assert path == ref_path(hasher, index, leaves[:size])
            assert verify_inclusion(
                hasher, index, size, hasher.hash_leaf(leaves[index]), path, root
            )
        for first in range(1, size + 1):
            proof = consistency_proof(hasher, nodes, first, size)
            assert proof == ref_subproof(hasher, first, leaves[:size], True)
            old = ref_mth(hasher, leaves[:first])
            assert verify_consistency(hasher, first, size, old, root, proof)


def test_bad_requests_and_bad_proofs() -> None:
    nodes = build(SHA3_256, CT_LEAVES)
    with pytest.raises(ProofError):
        inclusion_proof(SHA3_256, nodes, 8, 8)
    with pytest.raises(ProofError):
        consistency_proof(SHA3_256, nodes, 0, 4)
    with pytest.raises(ProofError):
        consistency_proof(SHA3_256, nodes, 5, 4)
    root = tree_root(SHA3_256, nodes, 8)
    leaf = SHA3_256.hash_leaf(CT_LEAVES[3])
    path = inclusion_proof(SHA3_256, nodes, 3, 8)
    assert not verify_inclusion(SHA3_256, 3, 8, leaf, path[:-1], root)  # too short
    assert not verify_inclusion(SHA3_256, 3, 8, leaf, [*path, path[0]], root)  # too long
    assert not verify_inclusion(SHA3_256, 4, 8, leaf, path, root)  # wrong index
    assert not verify_inclusion(SHA3_256, 3, 9, leaf, path, root)  # wrong size
    assert not verify_inclusion(SHA3_256, 8, 8, leaf, path, root)
    old = tree_root(SHA3_256, nodes, 3)
    proof = consistency_proof(SHA3_256, nodes, 3, 8)
    assert not verify_consistency(SHA3_256, 3, 8, old, root, [])
    assert not verify_consistency(SHA3_256, 3, 8, root, old, proof)
    assert not verify_consistency(SHA3_256, 0, 8, old, root, proof)
    assert not verify_consistency(SHA3_256, 8, 8, root, root, proof)


# properties, SHA3-256 (production)

trees = st.lists(st.binary(max_size=24), min_size=1, max_size=70)


def flip(value: bytes, position: int) -> bytes:
    position %= len(value)
    return value[:position] + bytes([value[position] ^ 1]) + value[position + 1 :]


@settings(max_examples=60, deadline=None)
@given(leaves=trees, data=st.data())
def test_inclusion_proofs_verify_and_any_changed_byte_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    nodes = build(SHA3_256, leaves)
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    root = tree_root(SHA3_256, nodes, size)
    leaf = SHA3_256.hash_leaf(leaves[index])
    path = inclusion_proof(SHA3_256, nodes, index, size)
    assert verify_inclusion(SHA3_256, index, size, leaf, path, root)
    position = data.draw(st.integers(0, 10_000))
    assert not verify_inclusion(SHA3_256, index, size, flip(leaf, position), path, root)
    assert not verify_inclusion(SHA3_256, index, size, leaf, path, flip(root, position))
    if path:
        which = data.draw(st.integers(0, len(path) - 1))
        broken = [*path[:which], flip(path[which], position), *path[which + 1 :]]
        assert not verify_inclusion(SHA3_256, index, size, leaf, broken, root)


@settings(max_examples=60, deadline=None)
@given(leaves=trees, data=st.data())
def test_consistency_proofs_verify_and_any_changed_byte_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    nodes = build(SHA3_256, leaves)
    second = data.draw(st.integers(1, len(leaves)))
    first = data.draw(st.integers(1, second))
    old, new = tree_root(SHA3_256, nodes, first), tree_root(SHA3_256, nodes, second)
    proof = consistency_proof(SHA3_256, nodes, first, second)
    assert verify_consistency(SHA3_256, first, second, old, new, proof)
    position = data.draw(st.integers(0, 10_000))
    assert not verify_consistency(SHA3_256, first, second, flip(old, position), new, proof)
    if first != second:
        assert not verify_consistency(SHA3_256, first, second, old, flip(new, position), proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        broken = [*proof[:which], flip(proof[which], position), *proof[which + 1 :]]
        assert not verify_consistency(SHA3_256, first, second, old, new, broken)


def test_proofs_read_logarithmically_many_nodes() -> None:
    size = 100_003
    nodes = build(SHA3_256, [n.to_bytes(4, "big") for n in range(size)])
    worst = 0
    for index in (0, 1, 65_535, 65_536, 99_999, size - 1):
        nodes.reads = 0
        inclusion_proof(SHA3_256, nodes, index, size)
        worst = max(worst, nodes.reads)
    for first in (1, 3, 65_536, 70_001, size - 1):
        nodes.reads = 0
        consistency_proof(SHA3_256, nodes, first, size)
        worst = max(worst, nodes.reads)
    assert worst <= 2 * size.bit_length() + 2  # 2*17+2 = 36 reads at most, not ~100k


def test_dataset_root_is_the_same_hashing() -> None:
    hashes = [SHA256.hash_leaf(leaf) for leaf in CT_LEAVES]
    assert merkle_root(SHA256, hashes).hex() == CT_ROOTS[8]
    assert merkle_root(SHA256, []).hex() == CT_ROOTS[0]
