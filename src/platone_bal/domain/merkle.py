"""Merkle tree hashing, inclusion and consistency proofs exactly as RFC 9162 §2.1.

Hash-parametric: production uses SHA3-256, the tests also run the RFC 6962 SHA-256
vectors. The tree is never held in memory: an append emits the hashes of the *perfect*
subtrees it completes (`level`, `index`: the 2**level leaves from index * 2**level),
an adapter stores them, and proofs read them back through a `NodeReader`. Every
range the RFC recursion needs is either one stored perfect subtree or the right edge,
which folds O(log n) of them, so a proof for any (index, size) costs O(log n) reads
and never recomputes a large subtree.

Why not pymerkle: it stores leaves only and rebuilds subtree roots (behind an LRU
cache) when proving, so a cold proof over a large log recomputes large subtrees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

Node = tuple[int, int, bytes]
"""(level, index, hash) of a perfect subtree of 2**level leaves."""


class TreeHasher:
    """RFC 9162 leaf, node and empty-tree hashes over one hash function."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._new: Callable[[bytes], hashlib._Hash] = getattr(hashlib, name)

    def empty_root(self) -> bytes:
        return self._new(b"").digest()

    def hash_leaf(self, data: bytes) -> bytes:
        return self._new(b"\x00" + data).digest()

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        return self._new(b"\x01" + left + right).digest()


SHA3_256 = TreeHasher("sha3_256")
SHA256 = TreeHasher("sha256")


class NodeReader(Protocol):
    """Stored perfect-subtree hashes of one log."""

    def node(self, level: int, index: int) -> bytes: ...


class BatchNodeReader(NodeReader, Protocol):
    """A NodeReader that also reads many nodes in one round trip (a database)."""

    def nodes_at(self, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored nodes among `keys` ((level, index) pairs); missing ones are left out."""
        ...


_T = TypeVar("_T")


class _KeyRecorder:
    """A NodeReader that answers anything and writes down what was asked."""

    def __init__(self) -> None:
        self.keys: set[tuple[int, int]] = set()

    def node(self, level: int, index: int) -> bytes:
        self.keys.add((level, index))
        return bytes(32)


class _Prefetched:
    def __init__(self, nodes: dict[tuple[int, int], bytes], log: str) -> None:
        self._nodes = nodes
        self._log = log

    def node(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[level, index]
        except KeyError:
            raise KeyError(f"log {self._log!r} has no node ({level}, {index})") from None


def with_nodes(reader: BatchNodeReader, compute: Callable[[NodeReader], _T], log: str = "") -> _T:
    """`compute(reader)` with every node it reads fetched in one `nodes_at` call.

    Which nodes a root, proof or frontier needs depends only on sizes and indices, never
    on hash values: so `compute` runs once against a recorder to learn the keys, then
    again on the fetched nodes. A proof over a database costs one query, not O(log n).
    """
    recorder = _KeyRecorder()
    result = compute(recorder)
    if not recorder.keys:
        return result  # nothing stored was read: the result holds no placeholder
    return compute(_Prefetched(reader.nodes_at(recorder.keys), log))


class ProofError(ValueError):
    """A proof was asked for an index or sizes the tree cannot answer."""


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n >= 2), where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of a tree: one perfect subtree per set bit of its size.

    Appending a leaf completes at most log2(n) subtrees; they are returned so that the
    caller can store them alongside the leaf, in the same transaction.
    """

    def __init__(self, hasher: TreeHasher, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        if len(edge) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} edge subtrees")
        self.hasher = hasher
        self.size = size
        self.edge = list(edge)

    @staticmethod
    def edge_keys(size: int) -> list[tuple[int, int]]:
        """(level, index) of the edge subtrees of a tree of `size` leaves, largest first."""
        keys, offset = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                keys.append((level, offset >> level))
                offset += 1 << level
        return keys

    @classmethod
    def load(cls, hasher: TreeHasher, reader: NodeReader, size: int) -> Frontier:
        """The frontier of a stored tree of `size` leaves."""
        return cls(hasher, size, [reader.node(*key) for key in cls.edge_keys(size)])

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Add one leaf hash; returns the leaf and every subtree it completes."""
        nodes: list[Node] = [(0, self.size, leaf_hash)]
        level, index, current = 0, self.size, leaf_hash
        while index & 1:
            current = self.hasher.hash_children(self.edge.pop(), current)
            level, index = level + 1, index >> 1
            nodes.append((level, index, current))
        self.edge.append(current)
        self.size += 1
        return nodes

    def append_subtree(self, level: int, subtree_hash: bytes) -> None:
        """Add a whole perfect subtree of 2**level leaves at once (one whose leaves are
        not at hand: an archive's neighbours); the tree's size must be a multiple of it."""
        if self.size % (1 << level):
            raise ValueError(f"a subtree of level {level} cannot start at leaf {self.size}")
        index, current = self.size >> level, subtree_hash
        while index & 1:
            current = self.hasher.hash_children(self.edge.pop(), current)
            index >>= 1
        self.edge.append(current)
        self.size += 1 << level

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[Node]:
        return [node for leaf_hash in leaf_hashes for node in self.append(leaf_hash)]

    def root(self) -> bytes:
        """MTH of the whole tree: the edge folded from the right."""
        if not self.edge:
            return self.hasher.empty_root()
        current = self.edge[-1]
        for left in reversed(self.edge[:-1]):
            current = self.hasher.hash_children(left, current)
        return current


class MemoryNodes:
    """A NodeReader over a dict: for tests and small in-memory trees."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}

    def add(self, nodes: Iterable[Node]) -> None:
        for level, index, value in nodes:
            self.nodes[level, index] = value

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[level, index]


def merkle_root(hasher: TreeHasher, leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of a list of leaf hashes (e.g. a dataset's leaves in log order)."""
    frontier = Frontier(hasher)
    for leaf_hash in leaf_hashes:
        frontier.append(leaf_hash)
    return frontier.root()


def perfect_blocks(start: int, stop: int) -> Iterator[tuple[int, int]]:
    """(level, index) of the largest perfect subtrees that, one after the other, make
    up leaves [start, stop): what a tree grown from `start` appends to reach `stop` a
    subtree at a time."""
    while start < stop:
        level = (start & -start).bit_length() - 1 if start else (stop - start).bit_length()
        while start + (1 << level) > stop:
            level -= 1
        yield level, start >> level
        start += 1 << level


def range_root(hasher: TreeHasher, reader: NodeReader, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC recursion produces, from stored nodes."""
    width = end - start
    if width & (width - 1) == 0 and start % width == 0:
        level = width.bit_length() - 1
        return reader.node(level, start >> level)
    k = split_point(width)
    return hasher.hash_children(
        range_root(hasher, reader, start, start + k), range_root(hasher, reader, start + k, end)
    )


def tree_root(hasher: TreeHasher, reader: NodeReader, size: int) -> bytes:
    return hasher.empty_root() if size == 0 else range_root(hasher, reader, 0, size)


def inclusion_proof(hasher: TreeHasher, reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), deepest sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(range_root(hasher, reader, start + k, end))
            end = start + k
        else:
            path.append(range_root(hasher, reader, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(
    hasher: TreeHasher, reader: NodeReader, first: int, second: int
) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(first, D[0:second])."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    proof: list[bytes] = []
    start, end, old, whole = 0, second, first, True
    while old != end - start:
        k = split_point(end - start)
        if old <= k:
            proof.append(range_root(hasher, reader, start + k, end))
            end = start + k
        else:
            proof.append(range_root(hasher, reader, start, start + k))
            start, old, whole = start + k, old - k, False
    if not whole:
        proof.append(range_root(hasher, reader, start, end))
    proof.reverse()
    return proof


@dataclass(frozen=True, slots=True)
class PathStep:
    """One step up an inclusion path: `sibling` joined on its `side`, giving `result`."""

    sibling: bytes
    side: str
    """"left" or "right": where the sibling sits next to the hash carried up."""
    result: bytes


def inclusion_steps(
    hasher: TreeHasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> list[PathStep] | None:
    """RFC 9162 §2.1.3.2, step by step from the leaf to the root it leads to (shown by
    the dashboard's verifier); None when the path cannot be one for (index, size)."""
    if not 0 <= index < size:
        return None
    fn, sn, current = index, size - 1, leaf_hash
    steps: list[PathStep] = []
    for sibling in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            current = hasher.hash_children(sibling, current)
            steps.append(PathStep(sibling, "left", current))
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            current = hasher.hash_children(current, sibling)
            steps.append(PathStep(sibling, "right", current))
        fn, sn = fn >> 1, sn >> 1
    return steps if sn == 0 else None


def verify_inclusion(
    hasher: TreeHasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` put `leaf_hash` at `index` of the tree with `root`?"""
    steps = inclusion_steps(hasher, index, size, leaf_hash, proof)
    return steps is not None and (steps[-1].result if steps else leaf_hash) == root


def verify_consistency(
    hasher: TreeHasher,
    first: int,
    second: int,
    first_root: bytes,
    second_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (second, second_root) an append-only extension of
    the tree (first, first_root)?"""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a node itself
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_hash = second_hash = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_hash = hasher.hash_children(node, first_hash)
            second_hash = hasher.hash_children(node, second_hash)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_hash = hasher.hash_children(second_hash, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first_hash == first_root and second_hash == second_root
