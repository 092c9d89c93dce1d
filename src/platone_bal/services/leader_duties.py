"""What runs on the leader only, started when this node gains the lease and stopped
when it loses it (see `leadership`).

The sequencer is made anew for each term, with that term's fence. The checkpointers
sign a last checkpoint only on a clean stop, while the lease is still held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from platone_bal import metrics
from platone_bal.ports import Fence
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.sequencer import Sequencer


class Duty(Protocol):
    fence: Fence | None
    """The lease its writes hold while this node leads."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LeaderDuties:
    def __init__(
        self,
        sequencer: Callable[[Fence], Sequencer],
        checkpointers: Sequence[Checkpointer],
        duties: Sequence[Duty],
    ) -> None:
        self._make_sequencer = sequencer
        self._checkpointers = list(checkpointers)
        self._duties = list(duties)
        self._lock = threading.Lock()
        self._closing = False
        self.sequencer: Sequencer | None = None

    def gain(self, fence: Fence) -> None:
        with self._lock:
            if self._closing:
                return
            self.sequencer = self._make_sequencer(fence)
            self.sequencer.start()
            for checkpointer in self._checkpointers:
                checkpointer.fence = fence
                checkpointer.start()
            for duty in self._duties:
                duty.fence = fence
                duty.start()
            metrics.LEADER.set(1)

    def wind_down(self, first: Sequence[Duty]) -> None:
        """A clean stop begins: no new term starts here, and `first` (what needs the
        broker, which stops next) stop now; the rest stop with the lease."""
        with self._lock:
            self._closing = True
            for duty in first:
                duty.stop()

    def lose(self, still_held: bool) -> None:
        with self._lock:
            metrics.LEADER.set(0)
            for duty in reversed(self._duties):
                duty.stop()
            for checkpointer in self._checkpointers:
                checkpointer.stop(final=still_held)
            if self.sequencer is not None:
                self.sequencer.stop()
                self.sequencer = None
