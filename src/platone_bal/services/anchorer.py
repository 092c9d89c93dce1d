"""Puts the newest signed checkpoint on chain, at most once per interval.

One transaction per interval covers every reading of the fleet, so chain load does not
grow with the number of devices (ARCHITECTURE §5). The chain is the source of truth for
what is anchored: before each attempt the anchorer reads the log's latest anchor from
the contract and records any `Anchored` events it has not seen (a transaction mined
just before a crash, say). So pending work needs no queue of its own: whatever is
signed but not on chain is simply the newest checkpoint, and it goes out when the chain
answers again. Ingest never waits for any of this.
"""

from __future__ import annotations

import logging

from platone_bal import metrics
from platone_bal.domain.checkpoint import Anchor
from platone_bal.ports import AnchorChain, ChainError, Store
from platone_bal.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)


class Anchorer(PeriodicWorker):
    name = "bal-anchorer"

    def __init__(
        self, store: Store, chain: AnchorChain, *, log_id: str, interval: float = 10.0
    ) -> None:
        # No growing backoff: one cheap call per interval tells whether the chain is
        # back, and anchoring must resume within one interval of it answering again.
        super().__init__(interval, interval)
        self.store = store
        self.chain = chain
        self.log_id = log_id

    def reconcile(self) -> int:
        """Record anchors the chain holds but the store does not; return the chain's size."""
        chain_size, _, _ = self.chain.latest(self.log_id)
        recorded = self.store.latest_anchor(self.log_id)
        if chain_size > (recorded.size if recorded is not None else 0):
            since = recorded.block if recorded is not None else None
            for anchor in self.chain.anchored_events(self.log_id, since):
                self.store.add_anchor(anchor, self.fence)
        return chain_size

    def anchor_once(self) -> Anchor | None:
        """Anchor the newest checkpoint if the chain does not have it yet."""
        chain_size = self.reconcile()
        newest = self.store.latest_checkpoint(self.log_id)
        if newest is None or newest.checkpoint.size <= chain_size:
            return None
        checkpoint = newest.checkpoint
        anchor = self.chain.anchor(self.log_id, checkpoint.size, checkpoint.root)
        self.store.add_anchor(anchor, self.fence)
        metrics.ANCHOR_SIZE.labels(self.log_id).set(anchor.size)
        log.info("anchored %s size %d in tx %s", self.log_id, anchor.size, anchor.tx)
        return anchor

    def step(self) -> Anchor | None:
        return self.anchor_once()

    def failed(self, error: Exception, retry_in: float) -> None:
        metrics.ANCHOR_FAILURES.inc()
        # a chain that is down is expected; anything else deserves a traceback
        expected = isinstance(error, ChainError | OSError)
        log.warning(
            "anchoring failed (%s); retrying in %.0f s", error, retry_in, exc_info=not expected
        )
