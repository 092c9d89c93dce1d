"""The log read once in index order and its Merkle tree rebuilt from the leaves: every
stored node (each leaf hash and each perfect subtree, which proofs are made of) must be
the rebuilt one, and every signed checkpoint must have the rebuilt root at its size and
a valid signature."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.checkpoint import CheckpointError, SignedCheckpoint, verify_signature
from platone_bal.domain.merkle import SHA3_256, Frontier
from platone_bal.ports import RawRecord, Store
from platone_bal.services.audit.records import check_entry, check_reading
from platone_bal.services.audit.report import AuditReport, BadRow, Finding
from platone_bal.services.audit.rows import PAGE, checkpoint_of, shown


class LogPass:
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
        self.checkpoints = StoredCheckpoints(store, log)
        self.checked = check_entry if log == AUDIT_LOG else check_reading

    def run(self, progress: Callable[[int], None]) -> dict[int, bytes]:
        """The rebuilt root at each wanted size (the anchors', stored and on chain)."""
        size = self.report.size
        index = 0
        while index < size:
            records = self.store.raw_records(self.log, index, min(index + PAGE, size))
            if not records:
                raise Finding("record missing from the store", index)
            nodes = PageNodes(self.store, self.log, index, index + len(records))
            for record in records:
                self._append(record, index, nodes)
                index += 1
                self._reached(index)
            progress(self.report.readings)
        return self.roots

    def _append(self, record: RawRecord, index: int, nodes: PageNodes) -> None:
        if record.index != index:
            raise Finding(f"record for index {index} is missing", index)
        try:
            raw = self.checked(record.leaf, record.values)
        except BadRow as bad:
            raise Finding(str(bad), index) from None
        for level, node_index, value in self.frontier.append(SHA3_256.hash_leaf(raw)):
            nodes.check(level, node_index, value)
        self.report.readings += 1

    def _reached(self, size: int) -> None:
        """The rebuilt tree has `size` leaves: check the checkpoints of that size, and
        keep its root if an anchor names that size."""
        for signed in self.checkpoints.upto(size):
            checkpoint = signed.checkpoint
            if checkpoint.size != size:
                raise Finding(f"a checkpoint of size {checkpoint.size} (never signed)")
            root = self.frontier.root()
            if root != checkpoint.root:
                raise Finding(
                    f"checkpoint of size {size} has root 0x{checkpoint.root.hex()}, "
                    f"the stored leaves give 0x{root.hex()}",
                    size - 1,
                )
            try:
                verify_signature(signed)
            except CheckpointError as error:
                raise Finding(f"checkpoint of size {size}: {error}") from None
            self.report.checkpoints += 1
        if size in self.wanted:
            self.roots[size] = self.frontier.root()


class PageNodes:
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
                raise Finding("leaf bytes do not hash to the stored leaf hash", first)
            raise Finding(f"the stored leaf hash is {shown(stored)}", first)
        raise Finding(
            f"stored Merkle node (level {level}, index {index}) over leaves {first}-{last} "
            f"is {shown(stored)}; the leaves give 0x{rebuilt.hex()}",
            first,
        )


class StoredCheckpoints:
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
            signed = checkpoint_of(self._log, row)
            self._page.append(signed)
            self._after = signed.checkpoint.size


def nothing_beyond(store: Store, log: str, size: int) -> None:
    """Nothing of the log lies past its leaf hashes: a rollback that removed those but
    left records or checkpoints shows here. (A running node may have grown during the
    audit: past its size now.)"""
    end = max(size, store.log_size(log))
    if (index := store.raw_index_from(log, end)) is not None:
        raise Finding(
            f"a record at index {index!r} lies beyond the log's {end} leaves (it has no leaf hash)",
            end,
        )
    if checkpoints := store.raw_checkpoints(log, end, 1):
        raise Finding(
            f"a checkpoint of size {checkpoints[0][0]!r} lies beyond the log's {end} leaves"
        )
