"""The log read once in index order and its Merkle tree rebuilt from the leaves: every
stored node (each leaf hash and each perfect subtree, which proofs are made of) must be
the rebuilt one, and every signed checkpoint must have the rebuilt root at its size and
a valid signature.

The records come a page at a time, most already checked apart (`pages`, maybe in worker
processes): a clean page brings its records checked and the nodes wholly inside it
rebuilt and held against the stored ones, so only the few nodes over its start (a
perfect subtree begun on an earlier page) and the checkpoints are left. A page that is
not clean is audited here record by record, as it always was, so the first problem
found, and its words, are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from platone_bal.domain.checkpoint import CheckpointError, verify_signature
from platone_bal.domain.merkle import SHA3_256, Frontier, perfect_blocks
from platone_bal.ports import RawRecord, Store
from platone_bal.services.audit.checkpoints import Stops, StoredCheckpoints
from platone_bal.services.audit.pages import PageTree
from platone_bal.services.audit.records import check_of
from platone_bal.services.audit.report import AuditReport, BadRow, Finding
from platone_bal.services.audit.rows import PAGE, shown

CheckedPage = tuple[int, int, tuple[bytes, ...] | None]
"""(start, stop, and for a clean page the nodes inside it, else None): `pages.check_page`."""


class LogPass:
    """The log read once in index order, a page at a time: each record is checked, its
    leaf appended to a rebuilt tree, every node that append completes held against the
    stored one, and each checkpoint checked when the rebuilt tree reaches its size."""

    def __init__(
        self, store: Store, log: str, report: AuditReport, wanted: set[int], page: int = PAGE
    ) -> None:
        self.store = store
        self.log = log
        self.report = report
        self.wanted = wanted
        self.page = page
        self.roots: dict[int, bytes] = {}
        self.frontier = Frontier(SHA3_256)
        self.checkpoints = StoredCheckpoints(store, log)
        self.stops = Stops(self.checkpoints, wanted)
        self.checked = check_of(log)

    def run(
        self, pages: Iterable[CheckedPage], progress: Callable[[int], None]
    ) -> dict[int, bytes]:
        """The rebuilt root at each wanted size (the anchors', stored and on chain), from
        the log's pages in order."""
        for start, stop, levels in pages:
            if levels is None or not self._add_clean(start, stop, PageTree(start, levels)):
                reached = self._record_by_record(start, stop)
                if reached != stop:  # past the page without a finding: never seen
                    self._record_by_record(reached, self.report.size)
                    break
            progress(self.report.readings)
        return self.roots

    def _record_by_record(self, index: int, until: int) -> int:
        """Records from `index` on, each checked here, until `until` is reached (a page
        cut short by a missing record reads on, to name it as it always did)."""
        size = self.report.size
        while index < until:
            records = self.store.raw_records(self.log, index, min(index + self.page, size))
            if not records:
                raise Finding("record missing from the store", index)
            nodes = PageNodes(self.store, self.log, index, index + len(records))
            for record in records:
                self._append(record, index, nodes)
                index += 1
                self._reached(index, self.frontier.root)
        return index

    def _add_clean(self, start: int, stop: int, inside: PageTree) -> bool:
        """A clean page into the tree, a perfect subtree at a time; False, with nothing
        changed, if a node over the page's start differs from the stored one (the page
        is then audited record by record, to name it in its place)."""
        before = dict(zip(Frontier.edge_keys(start), self.frontier.edge, strict=True))
        edge = list(self.frontier.edge)
        over: dict[tuple[int, int], bytes] = {}
        for level, index in perfect_blocks(start, stop):
            current = inside.node(level, index)
            assert current is not None, "a clean page holds its whole subtrees"
            while index & 1:  # completes a subtree begun before the page
                current = SHA3_256.hash_children(edge.pop(), current)
                level, index = level + 1, index >> 1
                over[level, index] = current
            edge.append(current)
        runs = [(level, index, value) for (level, index), value in over.items()]
        if self.store.raw_nodes_equal(self.log, runs) != len(runs):
            return False

        def root(size: int) -> bytes:
            """The root at a size within the page: its edge is made of subtrees ended
            before the page, begun before it, or inside it."""
            edge_then = []
            for key in Frontier.edge_keys(size):
                node = before.get(key) or over.get(key) or inside.node(*key)
                assert node is not None, "every subtree of the edge is at hand"
                edge_then.append(node)
            return Frontier(SHA3_256, size, edge_then).root()

        readings = self.report.readings
        size = self.stops.after(start)
        while size is not None and size <= stop:
            self.report.readings = readings + size - start
            self._reached(size, partial(root, size))
            size = self.stops.after(size)
        self.report.readings = readings + stop - start
        self.frontier = Frontier(SHA3_256, stop, edge)
        return True

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

    def _reached(self, size: int, root_now: Callable[[], bytes]) -> None:
        """The rebuilt tree has `size` leaves (and root `root_now()`): check the
        checkpoints of that size, and keep its root if an anchor names that size."""
        for signed in self.checkpoints.upto(size):
            checkpoint = signed.checkpoint
            if checkpoint.size != size:
                raise Finding(f"a checkpoint of size {checkpoint.size} (never signed)")
            root = root_now()
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
            self.roots[size] = root_now()


class PageNodes:
    """The stored nodes a page of leaves [start, end) completes, read with one query
    per level from `lowest` up: every node is checked, and no node costs a query of its
    own."""

    def __init__(self, store: Store, log: str, start: int, end: int, lowest: int = 0) -> None:
        self._stored: dict[int, dict[object, object]] = {}
        level = lowest
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
