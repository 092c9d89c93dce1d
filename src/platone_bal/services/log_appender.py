"""Where a leaf gets its index: the one integrate step every log and backend share.

In the style of Tessera's integrate: leaf hashes in, their indices and the perfect
subtrees they complete out, written through the caller's transaction, so the leaves'
rows and the tree commit together. The backend only stores what it is given; it never
decides an index.
"""

from __future__ import annotations

from collections.abc import Sequence

from platone_bal.domain.merkle import SHA3_256, Frontier, TreeHasher
from platone_bal.ports import TreeWriter


class LogAppender:
    """Appends leaf hashes to a log inside a transaction."""

    def __init__(self, hasher: TreeHasher = SHA3_256) -> None:
        self.hasher = hasher

    def append(self, tree: TreeWriter, log: str, leaf_hashes: Sequence[bytes]) -> int:
        """Append `leaf_hashes` in order; returns the index of the first one (the rest
        follow contiguously). The log's head stays locked until the caller commits."""
        size = tree.lock_log(log)
        if not leaf_hashes:
            return size
        keys = Frontier.edge_keys(size)
        stored = tree.nodes_at(log, keys)
        missing = [key for key in keys if key not in stored]
        if missing:
            raise KeyError(f"log {log!r} of size {size} lacks its edge nodes {missing}")
        frontier = Frontier(self.hasher, size, [stored[key] for key in keys])
        tree.add_nodes(log, frontier.extend(leaf_hashes))
        tree.set_log_size(log, frontier.size)
        return size
