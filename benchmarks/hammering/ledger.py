"""What the hammer sent, what the broker acknowledged, and the final comparison with
what the node stored; thread-safe counters and failures."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from platone_bal.simulate import one_reading_payload

FAILURES = (
    "lost",
    "duplicated",
    "phantom",
    "proofs_invalid",
    "consistency_failed",
    "checkpoint_shrinks",
    "checkpoints_invalid",
    "http_errors",
    "errors",
    "store_mismatch",
    "store_changed_after_stop",
    "node_exit",
)
"""What makes a run fail; each is a count in the report's `failures`."""
PROBE_PREFIX = "probe-"
"""Devices of the payloads that check a new producer can publish; never counted."""
MAX_PROBLEMS = 100

Stored = Counter[tuple[str, str]]
"""Readings per (producer, device)."""


class Tally:
    """Thread-safe counters, failure counts and the first problems' descriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter({name: 0 for name in FAILURES})
        self.problems: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def fail(self, kind: str, detail: str, amount: int = 1) -> None:
        assert kind in FAILURES, kind
        with self._lock:
            self.failures[kind] += amount
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(f"{kind}: {detail}"[:500])


@dataclass(frozen=True)
class Sent:
    producer: str
    """The login that published it (its topic is platone/PRODUCER/...)."""
    action: str


class Ledger:
    """Every payload sent, by its unique device id, and which ones the broker PUBACKed.

    A device id is its producer's login, a dash and a number unique in the run, so a
    reading stored under another producer than the one that sent it is noticed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self.sent: dict[str, Sent] = {}
        self.acked: set[str] = set()

    def new_device(self, producer: str, action: str) -> str:
        with self._lock:
            self._next += 1
            device = f"{producer}-{self._next}"
            self.sent[device] = Sent(producer, action)
            return device

    def puback(self, device: str) -> None:
        with self._lock:
            self.acked.add(device)

    def snapshot(self) -> tuple[dict[str, Sent], set[str]]:
        with self._lock:
            return dict(self.sent), set(self.acked)


pmu_payload = one_reading_payload
"""A one-reading PMU payload, unique by its device id."""


class Tracker:
    """The PUBACKs of one paho client, by device; it publishes as one producer.

    paho's `on_publish` may run (in its network thread) before `publish` has returned
    the message id, so an acknowledgment of an id not registered yet is kept aside
    until the publishing thread registers it.
    """

    def __init__(self, ledger: Ledger, producer: str) -> None:
        self.ledger = ledger
        self.producer = producer
        self.topic = f"platone/{producer}"
        self._changed = threading.Condition()
        self._pending: dict[int, str] = {}
        self._early: set[int] = set()

    def on_publish(self, _: mqtt.Client, __: Any, mid: int, reason: ReasonCode, ___: Any) -> None:
        with self._changed:
            device = self._pending.pop(mid, None)
            if device is None:
                self._early.add(mid)
            self._changed.notify_all()
        if device is not None and not reason.is_failure:
            self.ledger.puback(device)

    def publish(self, client: mqtt.Client, action: str) -> None:
        device = self.ledger.new_device(self.producer, action)
        info = client.publish(f"{self.topic}/{device}", pmu_payload(device), qos=1)
        with self._changed:
            acked = info.mid in self._early
            if acked:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = device
        if acked:
            self.ledger.puback(device)

    @property
    def outstanding(self) -> int:
        with self._changed:
            return len(self._pending)

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every message published through this tracker is acknowledged."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


def compare(sent: dict[str, Sent], acked: set[str], stored: Stored, tally: Tally) -> dict[str, Any]:
    """Every PUBACKed payload stored exactly once, under the producer that sent it;
    nothing stored twice, never sent, or under another producer."""
    ours: Stored = Counter(
        {key: n for key, n in stored.items() if not key[1].startswith(PROBE_PREFIX)}
    )
    expected = {device: (row.producer, device) for device, row in sent.items()}
    lost = sorted((d for d in acked if expected[d] not in ours), key=_order)
    duplicated = sorted((key for key, n in ours.items() if n > 1), key=_key_order)
    phantom = sorted((key for key in ours if expected.get(key[1]) != key), key=_key_order)
    if lost:
        tally.fail("lost", f"{len(lost)} PUBACKed payloads not stored, e.g. {lost[:20]}", len(lost))
    if duplicated:
        detail = {"/".join(key): ours[key] for key in duplicated[:20]}
        tally.fail(
            "duplicated", f"{len(duplicated)} stored more than once: {detail}", len(duplicated)
        )
    if phantom:
        detail_ = ["/".join(key) for key in phantom[:20]]
        tally.fail(
            "phantom",
            f"{len(phantom)} stored but never sent by that producer: {detail_}",
            len(phantom),
        )
    by_action: dict[str, dict[str, int]] = {}
    for device, row in sent.items():
        counts = by_action.setdefault(
            row.action, {"sent": 0, "pubacked": 0, "stored": 0, "lost": 0}
        )
        counts["sent"] += 1
        counts["pubacked"] += device in acked
        counts["stored"] += expected[device] in ours
        counts["lost"] += device in acked and expected[device] not in ours
    stored_acked = sum(1 for device in acked if expected[device] in ours)
    return {
        "sent": len(sent),
        "pubacked": len(acked),
        "stored": len(ours),
        "stored_pubacked": stored_acked,
        "stored_unacked": len(ours) - stored_acked - len(phantom),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "phantom": len(phantom),
        "readings": sum(ours.values()),
        "probes": sum(n for key, n in stored.items() if key[1].startswith(PROBE_PREFIX)),
        "producers": len({row.producer for row in sent.values()}),
        "by_action": by_action,
    }


def _order(device: str) -> tuple[str, int]:
    prefix, _, number = device.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (device, -1)


def _key_order(key: tuple[str, str]) -> tuple[str, str, int]:
    return (key[0], *_order(key[1]))
