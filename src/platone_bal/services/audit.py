"""`bal audit`: recompute a log from its stored records and compare with everything.

Checks, in one pass over the log in index order:
1. each reading's stored columns are what its leaf says, and the leaf bytes are the
   canonical encoding of that leaf (a value changed in the database shows here); for
   the access log `bal-audit`, each entry's bytes are a canonical leaf of that log;
2. each leaf hashes to the stored level-0 node, and the tree rebuilt from the leaves
   has the root of every signed checkpoint, whose signatures hold;
3. each recorded anchor's root is the one the contract holds on chain.
It stops at the first bad index and says what differs: after that, everything
depends on data already known to be wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.checkpoint import (
    Anchor,
    CheckpointError,
    SignedCheckpoint,
    verify_signature,
)
from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.merkle import SHA3_256, Frontier
from platone_bal.ports import AnchorChain, ChainError, Store, StoredReading

PAGE = 5000


@dataclass
class AuditReport:
    log: str
    size: int
    readings: int = 0
    checkpoints: int = 0
    anchors: int = 0
    problem: str | None = None
    bad_index: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _reading_differs(reading: StoredReading, raw: bytes) -> str | None:
    leaf = json.loads(raw)
    if leaf_bytes(leaf) != raw:
        return "stored leaf bytes are not the canonical (RFC 8785) encoding of the leaf"
    expected = {
        "log": reading.log,
        "producer": reading.producer,
        "owner": reading.owner,
        "device": reading.device,
        "time": reading.time,
        "measurand": reading.measurand,
        "value": reading.value,
        "unit": reading.unit,
        "attrs": reading.attrs,
    }
    for key, stored in expected.items():
        if leaf.get(key) != stored:
            return f"{key}: stored {stored!r}, certified leaf says {leaf.get(key)!r}"
    source = {"format": reading.format, "received": reading.received, "message": reading.message}
    for key, stored in source.items():
        if leaf["source"].get(key) != stored:
            return f"source.{key}: stored {stored!r}, certified leaf says {leaf['source'][key]!r}"
    return None


def _entry_differs(raw: bytes, columns: tuple[int, str, str, str, str] | None) -> str | None:
    entry = json.loads(raw)
    if leaf_bytes(entry) != raw:
        return "stored entry bytes are not the canonical (RFC 8785) encoding of the entry"
    if entry.get("log") != AUDIT_LOG:
        return f"entry names log {entry.get('log')!r}"
    if columns is None:
        return "entry has no stored columns"
    _, time, who, action, producers = columns
    expected = {
        "time": time,
        "who": who,
        "action": action,
        "producers": producers.split(),
    }
    for key, stored in expected.items():
        if entry.get(key) != stored:
            return f"{key}: stored {stored!r}, certified entry says {entry.get(key)!r}"
    return None


def _records(store: Store, log: str, start: int) -> list[tuple[int, bytes, str | None]]:
    """(index, leaf bytes, what differs or None) of the next page from `start`."""
    if log == AUDIT_LOG:
        rows = store.audit_entries(after=start - 1, limit=PAGE)
        columns = {c[0]: c for c in store.audit_columns(after=start - 1, limit=PAGE)}
        return [(index, raw, _entry_differs(raw, columns.get(index))) for index, raw in rows]
    readings = store.readings_in_log(log, start, PAGE)
    leaves = dict(store.leaves(log, start, PAGE))
    return [(r.index, leaves[r.index], _reading_differs(r, leaves[r.index])) for r in readings]


def audit_log(
    store: Store,
    log: str,
    chain: AnchorChain | None,
    progress: Callable[[int], None] = lambda _: None,
) -> AuditReport:
    size = store.log_size(log)
    report = AuditReport(log, size)
    checkpoints = {c.checkpoint.size: c for c in _all_checkpoints(store, log)}
    nodes = store.nodes(log)
    frontier = Frontier(SHA3_256)
    index = 0
    while index < size:
        records = _records(store, log, index)
        if not records:
            report.problem, report.bad_index = "record missing from the store", index
            return report
        for record_index, raw, differs in records:
            if record_index != index:
                report.problem, report.bad_index = f"record for index {index} is missing", index
                return report
            if differs is not None:
                report.problem, report.bad_index = differs, index
                return report
            leaf_hash = SHA3_256.hash_leaf(raw)
            if nodes.node(0, index) != leaf_hash:
                report.problem = "leaf bytes do not hash to the stored leaf hash"
                report.bad_index = index
                return report
            frontier.append(leaf_hash)
            index += 1
            report.readings += 1
            signed = checkpoints.get(index)
            if signed is not None:
                if frontier.root() != signed.checkpoint.root:
                    report.problem = (
                        f"checkpoint of size {index} has root 0x{signed.checkpoint.root.hex()}, "
                        f"the stored leaves give 0x{frontier.root().hex()}"
                    )
                    report.bad_index = index - 1
                    return report
                try:
                    verify_signature(signed)
                except CheckpointError as error:
                    report.problem = f"checkpoint of size {index}: {error}"
                    return report
                report.checkpoints += 1
        progress(report.readings)
    if chain is None:
        report.notes.append("anchors not checked on chain (no chain given)")
        return report
    for _, anchor in _all_anchors(store, log):
        try:
            on_chain = chain.root_at(log, anchor.size)
        except ChainError as error:
            report.problem = f"cannot read anchors on chain: {error}"
            return report
        if on_chain != anchor.root:
            held = "no root" if on_chain is None else f"0x{on_chain.hex()}"
            report.problem = (
                f"anchor of size {anchor.size} (tx {anchor.tx}): the contract holds {held}, "
                f"the store recorded 0x{anchor.root.hex()}"
            )
            return report
        signed = checkpoints.get(anchor.size)
        if signed is not None and signed.checkpoint.root != anchor.root:
            report.problem = f"anchor of size {anchor.size} does not match its checkpoint"
            return report
        report.anchors += 1
    return report


def _all_checkpoints(store: Store, log: str) -> list[SignedCheckpoint]:
    found: list[SignedCheckpoint] = []
    after = 0
    while page := store.checkpoints(log, after, 10_000):
        found.extend(page)
        after = page[-1].checkpoint.size
    return found


def _all_anchors(store: Store, log: str) -> list[tuple[int, Anchor]]:
    found: list[tuple[int, Anchor]] = []
    after = 0
    while page := store.anchors(log, after, 10_000):
        found.extend(page)
        after = page[-1][0]
    return found
