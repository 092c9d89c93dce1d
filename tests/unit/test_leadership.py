"""Leadership: one node leads at a time; a clean stop hands over at once, a dead
leader's lease runs out and a standby takes over; a new term has a new fence."""

from __future__ import annotations

import time
from pathlib import Path

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.ports import Fence
from platone_bal.services.leadership import Leadership

LEASE_SECONDS = 1.0


class Events:
    def __init__(self) -> None:
        self.gained: list[Fence] = []
        self.lost: list[bool] = []


def node(store: SqliteStore, holder: str, events: Events) -> Leadership:
    return Leadership(
        store,
        holder,
        seconds=LEASE_SECONDS,
        on_gain=events.gained.append,
        on_loss=events.lost.append,
    )


def wait_until(condition: object, seconds: float = 10.0) -> float:
    """Seconds it took `condition()` to hold (fails after `seconds`)."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


def test_one_leader_and_a_clean_stop_hands_over_at_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "scd.sqlite3")
    a_events, b_events = Events(), Events()
    a, b = node(store, "a", a_events), node(store, "b", b_events)
    a.start()
    b.start()
    try:
        fence = a.fence()
        assert fence is not None and fence.holder == "a" and b.fence() is None
        assert [f.token for f in a_events.gained] == [1] and b_events.gained == []
        time.sleep(LEASE_SECONDS * 1.5)  # renewed meanwhile: still the same term
        assert a.fence() == fence and b.fence() is None
        a.stop()
        assert a_events.lost == [True]  # a clean stop: its last writes may go
        took = wait_until(lambda: b.fence() is not None)
        assert took < LEASE_SECONDS  # no waiting for the lease to run out
        assert [f.token for f in b_events.gained] == [2]
    finally:
        a.stop()
        b.stop()
        store.close()


def test_a_dead_leaders_lease_runs_out_and_a_standby_takes_over(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "scd.sqlite3")
    a_events, b_events = Events(), Events()
    a, b = node(store, "a", a_events), node(store, "b", b_events)
    a.start()
    b.start()
    try:
        assert a.fence() is not None
        a._stopping.set()  # dies: no more renewals, no release
        assert a._thread is not None
        a._thread.join()
        died = time.monotonic()
        wait_until(lambda: a.fence() is None)  # it steps down by its own clock first
        wait_until(lambda: b.fence() is not None)
        took = time.monotonic() - died
        assert LEASE_SECONDS * 0.5 < took < LEASE_SECONDS * 2
        b_fence = b.fence()
        assert b_fence is not None and b_fence.token == 2
        a.step()  # back: it finds another leader and loses its term
        assert a_events.lost == [False] and a.fence() is None
    finally:
        b.stop()
        store.close()
