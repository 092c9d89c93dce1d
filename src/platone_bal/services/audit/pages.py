"""One page of a log, records [start, stop), checked on its own: the part of the audit
that needs nothing from the pages before it, so worker processes can do it for many
pages at once (`workers`) while the tree is finished from their results in order.

A page is clean when every record passes `check_reading` (or `check_entry`), the leaf
of index i being the page's i-th record, and every stored node wholly inside the page
(each leaf hash, each perfect subtree of its leaves) is the one its leaves give. A
clean page gives those nodes (`PageTree`); anything else gives None, and the caller
audits the page record by record (`tree.LogPass`), which finds the first problem and
names it exactly as an audit without pages checked apart would.
"""

from __future__ import annotations

import hashlib
from typing import cast

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import RawRecord, Store
from platone_bal.services.audit.match import LeafMatcher
from platone_bal.services.audit.records import check_of
from platone_bal.services.audit.report import BadRow

HASH_SIZE = 32
"""Bytes of one node (SHA3-256)."""
_MATCHER = LeafMatcher()
"""The process's matcher: what it remembers (which attrs agree) holds for any store."""


def check_page(store: Store, log: str, start: int, stop: int) -> tuple[bytes, ...] | None:
    """The nodes wholly inside a clean page, each level's joined (`PageTree.levels`)."""
    leaves = checked_leaves(store, log, start, stop, _MATCHER)
    if leaves is None:
        return None
    levels = subtrees(leaf_hashes(leaves), start, stop)
    return levels if all_stored(store, log, start, levels) else None


def leaf_hashes(leaves: list[bytes]) -> list[bytes]:
    """SHA3_256.hash_leaf (RFC 9162) of each leaf, without a call of its own."""
    sha3 = hashlib.sha3_256
    return [sha3(b"\x00" + leaf).digest() for leaf in leaves]


def subtrees(hashes: list[bytes], start: int, stop: int) -> tuple[bytes, ...]:
    """The nodes wholly inside leaves [start, stop) whose hashes are given, level by
    level, each level's joined (SHA3_256.hash_children, without a call of its own)."""
    sha3 = hashlib.sha3_256
    level, nodes = 0, hashes
    levels: list[bytes] = []
    while nodes:
        levels.append(b"".join(nodes))
        first = first_inside(start, level)
        level += 1
        pairs = range(2 * first_inside(start, level) - first, 2 * (stop >> level) - first, 2)
        nodes = [sha3(b"\x01" + nodes[at] + nodes[at + 1]).digest() for at in pairs]
    return tuple(levels)


def all_stored(store: Store, log: str, start: int, levels: tuple[bytes, ...]) -> bool:
    """Every node of `levels` (see `subtrees`) is stored as it is, the database says."""
    runs = [(level, first_inside(start, level), joined) for level, joined in enumerate(levels)]
    named = sum(len(joined) for joined in levels) // HASH_SIZE
    return store.raw_nodes_equal(log, runs) == named


def first_inside(start: int, level: int) -> int:
    """The first node of `level` that begins at or after leaf `start`."""
    return -(-start >> level)


class PageTree:
    """The nodes wholly inside a clean page [start, stop): `levels[l]` joins those of
    level l, from node first_inside(start, l) on."""

    def __init__(self, start: int, levels: tuple[bytes, ...]) -> None:
        self.start = start
        self.levels = levels

    def node(self, level: int, index: int) -> bytes | None:
        if level >= len(self.levels):
            return None
        at = (index - first_inside(self.start, level)) * HASH_SIZE
        if at < 0 or at >= len(self.levels[level]):
            return None
        return self.levels[level][at : at + HASH_SIZE]


def checked_leaves(
    store: Store, log: str, start: int, stop: int, matcher: LeafMatcher
) -> list[bytes] | None:
    """The leaves of records [start, stop) if each record passes its check. Readings go
    through the fast path first; only those it does not match are read in full."""
    rows = None if log in (AUDIT_LOG, SETPOINT_LOG) else store.raw_leaf_rows(log, start, stop)
    if rows is None:
        return fully_checked(store.raw_records(log, start, stop), log, start, stop)
    if [row[0] for row in rows] != list(range(start, stop)):
        return None
    leaves = [matcher.leaf(row) for row in rows]
    if None in leaves:
        full = {record.index: record for record in store.raw_records(log, start, stop)}
        for at, leaf in enumerate(leaves):
            if leaf is None:
                record = full.get(start + at)
                if record is None or (leaf := passed(record, log)) is None:
                    return None
                leaves[at] = leaf
    return cast(list[bytes], leaves)  # no None is left


def fully_checked(records: list[RawRecord], log: str, start: int, stop: int) -> list[bytes] | None:
    if [record.index for record in records] != list(range(start, stop)):
        return None
    leaves: list[bytes] = []
    for record in records:
        if (leaf := passed(record, log)) is None:
            return None
        leaves.append(leaf)
    return leaves


def passed(record: RawRecord, log: str) -> bytes | None:
    """The record's leaf if it passes the full check of its log's records."""
    try:
        return check_of(log)(record.leaf, record.values)
    except BadRow:
        return None
