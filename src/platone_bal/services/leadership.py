"""Which node of a BAL leads: a lease in the shared store, renewed in the background.

What must run once per BAL (the sequencer, the checkpointers that sign, the anchorers,
egress, set point delivery, the broker's rules) runs on the leader only: `on_gain`
starts it with the lease's fence, `on_loss` stops it. A leader that cannot renew (its
store unreachable, the process stalled) steps down by its own clock a margin before
the lease ends by the database's; and its writes are fenced anyway, so even a leader
that has not noticed yet can never write after the next one began.

Timing, with the default 5 s lease renewed every second: a leader that dies is
replaced within about 6 s (the lease runs out, then the next attempt of a standby
takes it); one that stops cleanly lets go at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from platone_bal.ports import Fence, LeaseStore, StoreUnavailable

log = logging.getLogger(__name__)

LEADER_LEASE = "leader"


class Leadership:
    """This node's claim on the leader lease."""

    def __init__(
        self,
        store: LeaseStore,
        holder: str,
        *,
        seconds: float = 5.0,
        on_gain: Callable[[Fence], None] = lambda _: None,
        on_loss: Callable[[bool], None] = lambda _: None,
        lease: str = LEADER_LEASE,
    ) -> None:
        self.store = store
        self.holder = holder
        self.seconds = seconds
        self.lease = lease
        self.on_gain = on_gain
        self.on_loss = on_loss
        """Told whether the lease is still held (a clean stop: last writes may go)."""
        self.changes = 0
        """How often this node gained or lost the lease (metrics, tests)."""
        self._fence: Fence | None = None
        self._valid_until = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def renew_every(self) -> float:
        return self.seconds / 5

    def fence(self) -> Fence | None:
        """The lease's fence while this node leads, else None; thread-safe."""
        fence = self._fence
        if fence is not None and time.monotonic() >= self._valid_until:
            return None  # not renewed in time: no longer sure to lead
        return fence

    def start(self) -> None:
        self._stopping.clear()
        self.step()
        self._thread = threading.Thread(target=self._run, name="bal-leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Step down and let the lease go, so another node takes over at once."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._fence is not None:
            self._lose(still_held=True)
            try:
                self.store.release_lease(self.lease, self.holder)
            except StoreUnavailable as error:
                log.warning("could not release the leader lease (%s); it runs out", error)

    def step(self) -> None:
        """Take or renew the lease once, and act on what changed."""
        asked = time.monotonic()
        try:
            token = self.store.take_lease(self.lease, self.holder, self.seconds)
        except StoreUnavailable as error:
            log.warning("leader lease not renewed: %s", error)
            if self._fence is not None and time.monotonic() >= self._valid_until:
                self._lose()
            return
        if token is None:
            if self._fence is not None:
                self._lose()
            return
        # step down a fifth of the lease early: the database's clock started later
        self._valid_until = asked + self.seconds * 0.8
        if self._fence is not None and self._fence.token != token:
            self._lose()  # the lease lapsed and was taken again: a new term
        if self._fence is None:
            self._fence = Fence(self.lease, self.holder, token)
            self.changes += 1
            log.info("leading as %s (term %d)", self.holder, token)
            self.on_gain(self._fence)

    def _lose(self, still_held: bool = False) -> None:
        self._fence = None
        self.changes += 1
        log.info("no longer leading (%s)", self.holder)
        self.on_loss(still_held)

    def _run(self) -> None:
        while not self._stopping.wait(self.renew_every):
            self.step()
