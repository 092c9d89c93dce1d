"""`bal audit`: rebuild a log from its stored rows and hold everything against it.

What an operator with the database in hand could change, and where it shows:

1. records: each reading's stored columns are what its leaf says, and the leaf bytes
   are the canonical encoding of that leaf (a value changed in the database shows
   here); for the access log `bal-audit`, each entry's bytes are a canonical leaf of
   that log and its stored columns (who sees it) are what the leaf says;
2. the tree: it is rebuilt from the leaves, and every stored node (each leaf hash and
   each perfect subtree: proofs are made of them) must be the rebuilt one; every signed
   checkpoint must have the rebuilt root at its size and a valid signature;
3. payloads: every stored message's payload hashes (SHA3-256) to its digest, the
   digest the leaves name. A payload refused as too large is stored cut to the limit
   (its size is the whole payload's) and cannot be rechecked: a note counts them; a
   message that gave readings is never cut, so a cut one is a finding;
4. anchors: each stored anchor's root is the rebuilt root at its size, and on chain its
   transaction exists, was mined in the stored block and emitted, from the registry,
   `Anchored` for that log, size and root;
5. the chain: every anchor the chain holds for the log is in the store, the chain's
   roots are the rebuilt roots, and the store is not behind the chain's latest anchored
   size (a rollback of readings with their nodes, checkpoints and anchors shows here).

A row of the wrong shape (a leaf stored as TEXT, a root that is not 32 bytes) is a
finding that names it, never a crash. The audit stops at the first problem and says
what differs: after that, everything depends on data already known to be wrong.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.checkpoint import (
    Anchor,
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    verify_signature,
)
from platone_bal.domain.leaf import leaf_bytes, message_digest
from platone_bal.domain.merkle import SHA3_256, Frontier
from platone_bal.ports import AnchorChain, ChainError, RawRecord, Store

PAGE = 5000
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_READING_FIELDS = ("log", "producer", "owner", "device", "time", "measurand", "value", "unit")


@dataclass
class AuditReport:
    log: str
    size: int
    readings: int = 0
    checkpoints: int = 0
    anchors: int = 0
    messages: int = 0
    """Message payloads rechecked against their digests."""
    problem: str | None = None
    bad_index: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Finding(Exception):
    """The first problem found: the audit stops (what follows rests on data known bad)."""

    def __init__(self, problem: str, index: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.index = index


class _Bad(Exception):
    """What is wrong with one row; the caller names the row."""


@dataclass(frozen=True, slots=True)
class _ChainView:
    """What the chain holds for the log."""

    latest_size: int
    roots: dict[int, bytes]
    """Root of every anchored size (the `Anchored` events and the contract's latest)."""
    anchors: list[Anchor]
    """The `Anchored` events, as the anchorer records them."""


def audit_log(
    store: Store,
    log: str,
    chain: AnchorChain | None,
    progress: Callable[[int], None] = lambda _: None,
) -> AuditReport:
    """Audit `log` (see the module's docstring); without a chain, only the store.

    The chain is read before the store: every anchor on chain is then of leaves already
    stored, so even on a running node only a store behind the chain fails that check.
    """
    report = AuditReport(log, 0)
    try:
        _audit(store, log, chain, progress, report)
    except _Finding as finding:
        report.problem, report.bad_index = finding.problem, finding.index
    return report


def _audit(
    store: Store,
    log: str,
    chain: AnchorChain | None,
    progress: Callable[[int], None],
    report: AuditReport,
) -> None:
    """The checks in the module docstring's order; the first problem raises `_Finding`.
    A chain that cannot be read fails the audit only after the store's own checks."""
    view: _ChainView | None = None
    chain_error: ChainError | None = None
    if chain is not None:
        try:
            view = _read_chain(chain, log)
        except ChainError as error:
            chain_error = error
    stored = _stored_anchors(store, log)
    report.size = store.log_size(log)
    wanted = {anchor.size for anchor in stored} | (set(view.roots) if view else set())
    roots = _LogPass(store, log, report, wanted).run(progress)
    _nothing_beyond(store, log, report.size)
    _check_anchor_roots(stored, roots, report.size)
    if log != AUDIT_LOG:
        _check_messages(store, log, report)
    if chain is None:
        report.notes.append("the log and its anchors were not compared with a chain (none given)")
        return
    if view is None:
        raise _Finding(f"cannot read anchors on chain: {chain_error}")
    _compare_with_chain(view, roots, report.size)
    for anchor in stored:
        _check_on_chain(chain, anchor)
        report.anchors += 1
    _none_missing(store, log, view)


# the log, page by page


class _LogPass:
    """The log read once in index order, a page at a time: each record is checked, its
    leaf appended to a rebuilt tree, every node that append completes held against the
    stored one, and each checkpoint checked when the rebuilt tree reaches its size."""

    def __init__(self, store: Store, log: str, report: AuditReport, wanted: set[int]) -> None:
        self.store = store
        self.log = log
        self.report = report
        self.wanted = wanted
        self.roots: dict[int, bytes] = {}
        self.frontier = Frontier(SHA3_256)
        self.checkpoints = _Checkpoints(store, log)
        self.checked = _check_entry if log == AUDIT_LOG else _check_reading

    def run(self, progress: Callable[[int], None]) -> dict[int, bytes]:
        """The rebuilt root at each wanted size (the anchors', stored and on chain)."""
        size = self.report.size
        index = 0
        while index < size:
            records = self.store.raw_records(self.log, index, min(PAGE, size - index))
            if not records:
                raise _Finding("record missing from the store", index)
            nodes = _PageNodes(self.store, self.log, index, index + len(records))
            for record in records:
                self._append(record, index, nodes)
                index += 1
                self._reached(index)
            progress(self.report.readings)
        return self.roots

    def _append(self, record: RawRecord, index: int, nodes: _PageNodes) -> None:
        if record.index != index:
            raise _Finding(f"record for index {index} is missing", index)
        try:
            raw = self.checked(record.leaf, record.columns)
        except _Bad as bad:
            raise _Finding(str(bad), index) from None
        for level, node_index, value in self.frontier.append(SHA3_256.hash_leaf(raw)):
            nodes.check(level, node_index, value)
        self.report.readings += 1

    def _reached(self, size: int) -> None:
        """The rebuilt tree has `size` leaves: check the checkpoints of that size, and
        keep its root if an anchor names that size."""
        for signed in self.checkpoints.upto(size):
            checkpoint = signed.checkpoint
            if checkpoint.size != size:
                raise _Finding(f"a checkpoint of size {checkpoint.size} (never signed)")
            root = self.frontier.root()
            if root != checkpoint.root:
                raise _Finding(
                    f"checkpoint of size {size} has root 0x{checkpoint.root.hex()}, "
                    f"the stored leaves give 0x{root.hex()}",
                    size - 1,
                )
            try:
                verify_signature(signed)
            except CheckpointError as error:
                raise _Finding(f"checkpoint of size {size}: {error}") from None
            self.report.checkpoints += 1
        if size in self.wanted:
            self.roots[size] = self.frontier.root()


class _PageNodes:
    """The stored nodes a page of leaves [start, end) completes, read with one query
    per level: every node is checked, and no node costs a query of its own."""

    def __init__(self, store: Store, log: str, start: int, end: int) -> None:
        self._stored: dict[int, dict[object, object]] = {}
        level = 0
        while end >> level:
            # node i of a level is complete with leaf (i + 1) * 2**level - 1
            low, high = ((start + (1 << level)) >> level) - 1, end >> level
            if low < high:
                self._stored[level] = dict(store.raw_nodes(log, level, low, high))
            level += 1

    def check(self, level: int, index: int, rebuilt: bytes) -> None:
        stored = self._stored.get(level, {}).get(index)
        if stored == rebuilt:
            return
        first, last = index << level, ((index + 1) << level) - 1
        if level == 0:
            if isinstance(stored, bytes):
                raise _Finding("leaf bytes do not hash to the stored leaf hash", first)
            raise _Finding(f"the stored leaf hash is {_shown(stored)}", first)
        raise _Finding(
            f"stored Merkle node (level {level}, index {index}) over leaves {first}-{last} "
            f"is {_shown(stored)}; the leaves give 0x{rebuilt.hex()}",
            first,
        )


class _Checkpoints:
    """The log's stored checkpoints in size order, read a page at a time as the rebuilt
    tree grows: a busy log signs one every 0.2 s, so they are never all held at once."""

    def __init__(self, store: Store, log: str) -> None:
        self._store = store
        self._log = log
        self._page: deque[SignedCheckpoint] = deque()
        self._after = 0
        self._done = False

    def upto(self, size: int) -> Iterator[SignedCheckpoint]:
        """The checkpoints not yet returned whose size is at most `size`, smallest first."""
        while True:
            if not self._page and not self._done:
                self._fetch()
            if not self._page or self._page[0].checkpoint.size > size:
                return
            yield self._page.popleft()

    def _fetch(self) -> None:
        rows = self._store.raw_checkpoints(self._log, self._after, PAGE)
        self._done = len(rows) < PAGE
        for row in rows:
            signed = _checkpoint_of(self._log, row)
            self._page.append(signed)
            self._after = signed.checkpoint.size


def _nothing_beyond(store: Store, log: str, size: int) -> None:
    """Nothing of the log lies past its leaf hashes: a rollback that removed those but
    left records or checkpoints shows here. (A running node may have grown during the
    audit: past its size now.)"""
    end = max(size, store.log_size(log))
    if records := store.raw_records(log, end, 1):
        raise _Finding(
            f"a record at index {records[0].index!r} lies beyond the log's {end} leaves "
            "(it has no leaf hash)",
            end,
        )
    if checkpoints := store.raw_checkpoints(log, end, 1):
        raise _Finding(
            f"a checkpoint of size {checkpoints[0][0]!r} lies beyond the log's {end} leaves"
        )


# stored anchors, messages and the chain


def _check_anchor_roots(stored: list[Anchor], roots: Mapping[int, bytes], size: int) -> None:
    """Each stored anchor's root is the rebuilt root at its size."""
    for anchor in stored:
        if anchor.size > size:
            raise _Finding(
                f"anchor of size {anchor.size} (tx {anchor.tx}) lies beyond the log's "
                f"{size} leaves",
                size,
            )
        rebuilt = roots.get(anchor.size)
        if rebuilt is None:
            raise _Finding(f"an anchor of size {anchor.size} (never anchored)")
        if rebuilt != anchor.root:
            raise _Finding(
                f"anchor of size {anchor.size} (tx {anchor.tx}) records root "
                f"0x{anchor.root.hex()}, the stored leaves give 0x{rebuilt.hex()}",
                anchor.size - 1,
            )


def _check_messages(store: Store, log: str, report: AuditReport) -> None:
    """Every stored message's payload against its digest, in any outcome (a refused
    payload is evidence too). The table is shared by the readings' logs; a finding
    names the first reading of `log` from that message, if any."""
    cut = 0
    after = 0
    while page := store.raw_messages(after, PAGE):
        for message_id, digest, size, payload in page:
            try:
                whole = _payload_checked(digest, size, payload)
            except _Bad as bad:
                index = store.message_reading_index(log, message_id)
                raise _Finding(f"message {message_id}: {bad}", index) from None
            report.messages += whole
            cut += not whole
        after = page[-1][0]
    if cut:
        report.notes.append(
            f"{cut} message(s) refused as too large are stored cut to the size limit: "
            "their payloads cannot be rechecked against their digests"
        )


def _payload_checked(digest: object, size: object, payload: object) -> bool:
    """True when the payload was rechecked, False when it is stored cut (cannot be)."""
    if not isinstance(payload, bytes):
        raise _Bad(f"payload is stored as {_sql_type(payload)}, not as the bytes received")
    whole = _int(size, "size")
    if len(payload) > whole:
        raise _Bad(f"payload of {len(payload)} bytes is longer than its recorded size {whole}")
    if len(payload) < whole:
        return False
    actual = message_digest(payload)
    if actual != digest:
        raise _Bad(f"payload does not hash to its digest {digest!r} (SHA3-256 gives {actual})")
    return True


def _read_chain(chain: AnchorChain, log: str) -> _ChainView:
    latest_size, latest_root, _ = chain.latest(log)
    events = chain.anchored_events(log)
    roots = {anchor.size: anchor.root for anchor in events}
    if latest_size:
        roots[latest_size] = latest_root
    return _ChainView(latest_size, roots, events)


def _compare_with_chain(view: _ChainView, roots: Mapping[int, bytes], size: int) -> None:
    """The store is not behind the chain, and holds the leaves of every anchored root."""
    if view.latest_size > size:
        raise _Finding(
            f"the chain's latest anchor of this log is of size {view.latest_size}, the store "
            f"holds only {size} leaves: the store is behind the chain (rolled back?)",
            size,
        )
    for anchored, root in sorted(view.roots.items()):
        rebuilt = roots.get(anchored)
        if rebuilt != root:
            raise _Finding(
                f"the chain anchored size {anchored} with root 0x{root.hex()}, "
                f"the stored leaves give {_shown(rebuilt)}",
                anchored - 1,
            )


def _check_on_chain(chain: AnchorChain, anchor: Anchor) -> None:
    """The stored anchor is its transaction's: mined in the stored block, and it made
    the registry emit `Anchored` for this log, size and root."""
    where = f"anchor of size {anchor.size}"
    if anchor.chain_id != chain.chain_id or anchor.contract.lower() != (
        chain.registry_address.lower()
    ):
        raise _Finding(
            f"{where} names contract {anchor.contract} on chain {anchor.chain_id}; the log "
            f"is anchored in {chain.registry_address} on chain {chain.chain_id}"
        )
    if not _TX_HASH.fullmatch(anchor.tx):
        raise _Finding(f"{where}: {anchor.tx!r} is not a transaction hash")
    try:
        made = chain.transaction_anchors(anchor.log, anchor.tx)
    except ChainError as error:
        raise _Finding(f"cannot read anchors on chain: {error}") from None
    if made is None:
        raise _Finding(f"{where}: the chain has no transaction {anchor.tx}")
    same = [a for a in made if (a.size, a.root) == (anchor.size, anchor.root)]
    if not same:
        did = ", ".join(f"size {a.size} with root 0x{a.root.hex()}" for a in made)
        raise _Finding(
            f"{where}: transaction {anchor.tx} anchored {did or 'nothing'} of this log, "
            f"not size {anchor.size} with root 0x{anchor.root.hex()}"
        )
    if same[0].block != anchor.block:
        raise _Finding(
            f"{where}: stored block {anchor.block}, transaction {anchor.tx} was mined in "
            f"block {same[0].block}"
        )
    if same[0].time != anchor.time:
        raise _Finding(f"{where}: stored time {anchor.time}, its block's is {same[0].time}")


def _none_missing(store: Store, log: str, view: _ChainView) -> None:
    """Every anchor the chain holds for the log is in the store: a deleted anchor row
    shows here. The store is read again: on a running node an anchor mined before the
    chain was read may have been recorded only since."""
    stored = {(a.size, a.tx.lower(), a.block) for a in _stored_anchors(store, log)}
    for anchor in view.anchors:
        if (anchor.size, anchor.tx.lower(), anchor.block) not in stored:
            raise _Finding(
                f"the chain anchored size {anchor.size} in transaction {anchor.tx} "
                f"(block {anchor.block}); the store has no record of that anchor"
            )


# rows as stored


def _stored_anchors(store: Store, log: str) -> list[Anchor]:
    found: list[Anchor] = []
    after = 0
    while page := store.raw_anchors(log, after, PAGE):
        for row_id, size, root, chain_id, contract, tx, block, time in page:
            try:
                found.append(
                    Anchor(
                        log,
                        _int(size, "size"),
                        _hash(root, "root"),
                        _int(chain_id, "chain id"),
                        _text(contract, "contract"),
                        _text(tx, "tx"),
                        _int(block, "block"),
                        _text(time, "time"),
                    )
                )
            except _Bad as bad:
                raise _Finding(f"anchor row {row_id}: {bad}") from None
        after = page[-1][0]
    return found


def _checkpoint_of(
    log: str, row: tuple[object, object, object, object, object]
) -> SignedCheckpoint:
    size, root, time, signature, signer = row
    try:
        checkpoint = Checkpoint(log, _int(size, "size"), _hash(root, "root"), _text(time, "time"))
        return SignedCheckpoint(checkpoint, _text(signature, "signature"), _text(signer, "signer"))
    except _Bad as bad:
        raise _Finding(f"checkpoint row of size {size!r}: {bad}") from None


def _check_reading(raw: object, columns: Mapping[str, object]) -> bytes:
    """The leaf bytes, once the columns stored beside them are what the leaf says."""
    data, leaf = _leaf_of(raw, "leaf")
    for key in _READING_FIELDS:
        if leaf.get(key) != columns.get(key):
            raise _Bad(f"{key}: stored {columns.get(key)!r}, certified leaf says {leaf.get(key)!r}")
    attrs = columns.get("attrs")
    try:
        stored_attrs = json.loads(attrs) if isinstance(attrs, str | bytes) else attrs
    except ValueError:
        raise _Bad(f"attrs: stored {attrs!r} is not JSON") from None
    if leaf.get("attrs") != stored_attrs:
        raise _Bad(f"attrs: stored {stored_attrs!r}, certified leaf says {leaf.get('attrs')!r}")
    source = leaf.get("source")
    if not isinstance(source, dict):
        raise _Bad(f"source: the certified leaf has {source!r}, not an object")
    for key, column in (("format", "format"), ("received", "received"), ("message", "message")):
        if source.get(key) != columns.get(column):
            raise _Bad(
                f"source.{key}: stored {columns.get(column)!r}, "
                f"certified leaf says {source.get(key)!r}"
            )
    if columns.get("message_id") is None:
        raise _Bad("its message is missing from the store")
    if columns.get("payload_length") != columns.get("message_size"):
        raise _Bad(
            f"its message {columns.get('message_id')} is stored with "
            f"{columns.get('payload_length')!r} of its {columns.get('message_size')!r} bytes; "
            "a message that gave readings is never cut"
        )
    return data


def _check_entry(raw: object, columns: Mapping[str, object]) -> bytes:
    """The entry bytes, once they are a leaf of bal-audit and the columns that decide who
    sees the entry are what it says."""
    data, entry = _leaf_of(raw, "entry")
    if entry.get("log") != AUDIT_LOG:
        raise _Bad(f"entry names log {entry.get('log')!r}")
    producers = columns.get("producers")
    if not isinstance(producers, str):
        raise _Bad(f"producers: stored {producers!r}, not text")
    expected = {
        "time": columns.get("time"),
        "who": columns.get("who"),
        "action": columns.get("action"),
        "producers": producers.split(),
    }
    for key, stored in expected.items():
        if entry.get(key) != stored:
            raise _Bad(f"{key}: stored {stored!r}, certified entry says {entry.get(key)!r}")
    return data


def _leaf_of(raw: object, what: str) -> tuple[bytes, dict[str, Any]]:
    """The stored bytes and the object they encode, if they are its canonical encoding."""
    if not isinstance(raw, bytes):
        raise _Bad(f"the {what} is stored as {_sql_type(raw)}, not as the certified bytes")
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):
        raise _Bad(f"the stored {what} bytes are not JSON") from None
    if not isinstance(decoded, dict):
        raise _Bad(f"the stored {what} is not a JSON object")
    try:
        canonical = leaf_bytes(decoded)
    except (ValueError, TypeError):
        canonical = None
    if canonical != raw:
        raise _Bad(f"stored {what} bytes are not the canonical (RFC 8785) encoding of the {what}")
    return raw, decoded


def _int(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise _Bad(f"{what} is stored as {_sql_type(value)} {value!r}, not an integer")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{what} is stored as {_sql_type(value)} {value!r}, not text")
    return value


def _hash(value: object, what: str) -> bytes:
    if not (isinstance(value, bytes) and len(value) == 32):
        raise _Bad(f"{what} is stored as {_shown(value)}, not 32 bytes")
    return value


def _shown(value: object) -> str:
    """A stored value for a finding: hashes in hex, anything else with its SQL type."""
    if value is None:
        return "missing"
    if isinstance(value, bytes):
        return f"0x{value.hex()}"
    return f"{_sql_type(value)} {value!r}"


def _sql_type(value: object) -> str:
    kinds = {bytes: "BLOB", str: "TEXT", int: "INTEGER", float: "REAL", type(None): "NULL"}
    return kinds.get(type(value), type(value).__name__)
