"""The log's stored checkpoints, read in size order as the rebuilt tree grows, and
where the tree must stop next for them (or for an anchor's size)."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Collection, Iterator

from platone_bal.domain.checkpoint import SignedCheckpoint
from platone_bal.ports import Store
from platone_bal.services.audit.rows import PAGE, checkpoint_of


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

    def next_due(self, size: int) -> int | None:
        """The smallest size above `size` at which `upto` does anything (returns a
        checkpoint, or reads the next page of them, which may find a malformed row);
        None if it never will. Reads nothing itself, so a finding comes when it would
        with `upto` called at every size."""
        if not self._page:
            return None if self._done else size + 1
        return max(self._page[0].checkpoint.size, size + 1)

    def _fetch(self) -> None:
        rows = self._store.raw_checkpoints(self._log, self._after, PAGE)
        self._done = len(rows) < PAGE
        for row in rows:
            signed = checkpoint_of(self._log, row)
            self._page.append(signed)
            self._after = signed.checkpoint.size


class Stops:
    """The sizes where the rebuilt tree must stop: each checkpoint's (`next_due`) and
    each wanted size (an anchor's, stored or on chain, whose root is kept)."""

    def __init__(self, checkpoints: StoredCheckpoints, wanted: Collection[int]) -> None:
        self._checkpoints = checkpoints
        self._wanted = sorted(wanted)

    def after(self, size: int) -> int | None:
        """The first size above `size` where the tree must stop, if any."""
        at = bisect_right(self._wanted, size)
        wanted = self._wanted[at] if at < len(self._wanted) else None
        due = self._checkpoints.next_due(size)
        if due is None or wanted is None:
            return due if wanted is None else wanted
        return min(due, wanted)
