"""A background thread that does one step per interval and backs off after failures.

The anchorer and egress both wait on something outside the node (a chain, a broker)
that may be down for a while: they retry after interval x 2^failures, at most
`max_backoff`, and never stop trying; the rest of the node goes on meanwhile.
"""

from __future__ import annotations

import logging
import threading

from platone_bal.ports import Fence

log = logging.getLogger(__name__)


class PeriodicWorker:
    name = "bal-worker"

    def __init__(self, interval: float, max_backoff: float) -> None:
        self.interval = interval
        self.max_backoff = max_backoff
        self.failures = 0
        self.last_error: str | None = None
        self.fence: Fence | None = None
        """The leader lease a duty's writes hold (see `leader_duties`); kept after the
        lease is lost, so a step still running then is refused, never unfenced."""
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._worker: threading.Thread | None = None

    def step(self) -> object:
        """One round of work; raising counts as a failure and backs off."""
        raise NotImplementedError

    def failed(self, error: Exception, retry_in: float) -> None:
        log.warning("%s failed (%s); retrying in %.1f s", self.name, error, retry_in)

    def wake(self) -> None:
        """Do the next step now rather than at the end of the interval."""
        self._woken.set()

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._stopping.is_set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _run(self) -> None:
        delay = self.interval
        while True:
            self._woken.wait(delay)
            self._woken.clear()
            if self._stopping.is_set():
                return
            try:
                self.step()
            except Exception as error:
                self.failures += 1
                self.last_error = str(error)
                delay = min(self.interval * 2**self.failures, self.max_backoff)
                self.failed(error, delay)
                continue
            self.failures, self.last_error, delay = 0, None, self.interval
