"""The leader's sequencer (Trillian's split): leaves other nodes queued get their
indices, rows and tree nodes, a batch per transaction, each fenced by the lease.

It polls the queue (an indexed count every `interval`), so a leaf queued on another
node is in the log within about `interval` plus one transaction; the checkpointer of
each log that grew is poked at once, which keeps the receipt under a second.
"""

from __future__ import annotations

from collections.abc import Callable

from platone_bal import metrics
from platone_bal.ports import Fence, LogStore
from platone_bal.services.periodic import PeriodicWorker
from platone_bal.services.recorder import Recorder

BATCH = 4096
"""Leaves per transaction: large enough that a backlog drains at the store's bulk
write rate, small enough that one transaction stays well under the lease."""


class Sequencer(PeriodicWorker):
    name = "bal-sequencer"

    def __init__(
        self,
        store: LogStore,
        recorder: Recorder,
        fence: Fence,
        on_grown: Callable[[str], None],
        *,
        interval: float = 0.05,
        batch: int = BATCH,
    ) -> None:
        super().__init__(interval, max_backoff=2.0)
        self.store = store
        self.recorder = recorder
        self.fence = fence
        self.on_grown = on_grown
        self.batch = batch
        self.sequenced = 0

    def step(self) -> None:
        """Sequence until the queue is empty (LeaseLost, once the lease went)."""
        fence = self.fence
        while fence is not None and not self.stopping and self.store.queued_leaves() > 0:
            grown = self.recorder.sequence(fence, self.batch)
            for log, count in grown.items():
                self.sequenced += count
                metrics.SEQUENCED.labels(log).inc(count)
                self.on_grown(log)
            if not grown:
                return
