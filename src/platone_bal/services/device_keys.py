"""The DSO's device keys as DeviceRegistry holds them, kept current from its events.

Ingest asks for a device's key once per envelope (and once per reading of unsigned
traffic, to refuse it from a device that must sign): that must cost a dictionary
look-up, not a chain call. So the registry's `DeviceRegistered`/`DeviceRevoked` events
are read once from its deployment block, then polled every `interval` seconds (1 s by
default: a registration or revocation counts within 5 s, as §8 asks), from whichever
JSON-RPC node the BAL uses: a key the DSO changes with any other tool counts too.

Until the events have been read once, nobody can say which devices must sign or with
which key: ingest then fails closed by raising `KeysUnavailable`, a `StoreUnavailable`,
so its batch is retried and nothing is acknowledged or wrongly refused meanwhile.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

from platone_bal.domain.devices import device_key
from platone_bal.domain.light_nodes import KeyState, changed
from platone_bal.ports import ChainError, DeviceKeyEvents, StoreUnavailable

log = logging.getLogger(__name__)


class KeysUnavailable(StoreUnavailable):
    """DeviceRegistry has not been read yet: ingest waits (retries) instead of deciding."""


@lru_cache(maxsize=65_536)
def registry_id(producer: str, device: str) -> bytes:
    """The device's id in DeviceRegistry, cached: unsigned traffic asks per reading."""
    return device_key(producer, device)


class DeviceKeys:
    """Each device's current DeviceRegistry entry, refreshed from the registry's events."""

    def __init__(self, events: DeviceKeyEvents, *, interval: float = 1.0) -> None:
        self._events = events
        self.interval = interval
        self._states: dict[bytes, KeyState] = {}
        self._next_block = events.first_block()
        self._loaded = threading.Event()
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    def state(self, producer: str, device: str) -> KeyState | None:
        """The device's entry (None: it never had a key); raises KeysUnavailable until
        the registry has been read once."""
        if not self._loaded.is_set():
            raise KeysUnavailable(f"DeviceRegistry not read yet: {self.last_error or 'starting'}")
        return self._states.get(registry_id(producer, device))

    def must_sign(self, producer: str, device: str) -> bool:
        """True when the device has a current (unrevoked) key: it sends only envelopes."""
        state = self.state(producer, device)
        return state is not None and not state.revoked

    def refresh(self) -> int:
        """Apply the events since the last refresh; how many there were. Raises ChainError."""
        with self._refreshing:
            changes, latest = self._events.key_changes(self._next_block)
            states = dict(self._states)
            for change in changes:
                state = changed(states.get(change.device_key), change)
                if state is not None:
                    states[change.device_key] = state
            self._states = states  # one assignment: readers see the old or the new map
            self._next_block = latest + 1
            self._loaded.set()
            self.last_error = None
            return len(changes)

    def start(self) -> None:
        """Read the registry once (a failure is retried by the thread), then keep polling."""
        try:
            self.refresh()
        except ChainError as error:
            self.last_error = str(error)
            log.warning("DeviceRegistry cannot be read yet: %s", error)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bal-device-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except ChainError as error:
                self.last_error = str(error)
                if not failing:  # once per outage, not once a second
                    log.warning("DeviceRegistry cannot be read: %s", error)
                failing = True
                continue
            except Exception:
                log.exception("reading DeviceRegistry failed")
                continue
            if failing:
                log.info("DeviceRegistry readable again")
            failing = False
