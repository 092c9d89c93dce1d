"""Signs a checkpoint of the log soon after it grows, so every reading has a receipt.

The contract (ARCHITECTURE §5) is a signed checkpoint covering a reading within 1 s
of its receipt. Signing once per committed batch would cost a signature per batch under
load; instead the ingest writer pokes this service after each commit and it signs at
most once per `min_interval`, always the newest size. Under load that is a few
signatures per second whatever the message rate; when idle, none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from platone_bal import metrics
from platone_bal.domain.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from platone_bal.domain.merkle import SHA3_256, tree_root, with_nodes
from platone_bal.domain.readings import format_time
from platone_bal.ports import Fence, Store

log = logging.getLogger(__name__)

LOOK_ANYWAY = 1.0
"""Seconds after which the checkpointer looks at its log's size unasked."""


class Checkpointer:
    def __init__(
        self,
        store: Store,
        *,
        log_id: str,
        private_key: bytes,
        clock: Callable[[], datetime],
        min_interval: float = 0.2,
    ) -> None:
        self.store = store
        self.log_id = log_id
        self._key = private_key
        self._clock = clock
        self._min_interval = min_interval
        self.fence: Fence | None = None
        """Set while this node leads: a checkpoint is stored only while the lease holds."""
        self._grown = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    def log_grew(self) -> None:
        """Called by the ingest writer after a commit; thread-safe, never blocks."""
        self._grown.set()

    def checkpoint_now(self) -> SignedCheckpoint | None:
        """Sign and store a checkpoint of the current size if it is new; return it."""
        size = self.store.log_size(self.log_id)
        latest = self.store.latest_checkpoint(self.log_id)
        if size == 0 or (latest is not None and latest.checkpoint.size >= size):
            return None
        root = with_nodes(
            self.store.nodes(self.log_id), lambda nodes: tree_root(SHA3_256, nodes, size)
        )
        checkpoint = Checkpoint(self.log_id, size, root, format_time(self._clock()))
        signed = sign_checkpoint(checkpoint, self._key)
        self.store.add_checkpoint(signed, self.fence)
        metrics.CHECKPOINT_SIZE.labels(self.log_id).set(size)
        return signed

    def start(self) -> None:
        self._stopping.clear()
        self._grown.set()  # catch up with anything committed before a restart
        self._worker = threading.Thread(target=self._run, name="bal-checkpointer", daemon=True)
        self._worker.start()

    def stop(self, final: bool = True) -> None:
        """Stop after one last checkpoint (`final`), so a clean shutdown leaves nothing
        unsigned; a leader that lost its lease stops without it."""
        if self._worker is None:
            return
        self._stopping.set()
        self._grown.set()
        self._worker.join()
        self._worker = None
        if final:
            self.checkpoint_now()

    def _run(self) -> None:
        while not self._stopping.is_set():
            # another node may have grown the log (a set point issued there): look anyway
            self._grown.wait(LOOK_ANYWAY)
            self._grown.clear()
            if self._stopping.is_set():
                return
            try:
                self.checkpoint_now()
            except Exception:
                log.exception("signing a checkpoint of %s failed; will retry", self.log_id)
                self._grown.set()
            self._stopping.wait(self._min_interval)
