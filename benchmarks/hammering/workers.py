"""The hammer's workers: weighted random actions on the node until the deadline, then
the persistent sessions finished and the node drained."""

from __future__ import annotations

import queue
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.hammering.api import ADMIN, Api, Apis, Readings, Tokens
from benchmarks.hammering.checks import Checks
from benchmarks.hammering.ledger import Ledger, Tally, Tracker
from benchmarks.hammering.sessions import Account, OneAtATime, PersistentSession, create_accounts

ACTIONS = ("burst", "per_message", "persistent", "proof", "consistency")
DEFAULT_WEIGHTS = {"burst": 3, "per_message": 1, "persistent": 2, "proof": 3, "consistency": 1}


@dataclass
class Options:
    seconds: float
    workers: int
    weights: dict[str, int]
    burst_min: int
    burst_max: int
    drain_seconds: float
    seed: int
    report: Path
    url: str | None
    mqtt_url: str | None
    admin_password: str | None
    data_dir: Path | None
    log: str
    anchor_interval: float
    node_env: dict[str, str] = field(default_factory=dict)
    keep: bool = False
    sessions: int = 0
    """Persistent sessions (each its own login); 0: as many as workers, at least 2."""

    @property
    def session_count(self) -> int:
        return self.sessions or max(2, self.workers)


@dataclass
class Worker:
    """One worker thread: its random stream, its own producer login, its API clients."""

    number: int
    rng: random.Random
    account: Account
    apis: Apis

    def checkpoint_reader(self) -> Api:
        """Who reads checkpoints: the admin or the worker's producer, by turns of workers
        (the node limits the rate per user)."""
        return self.apis(ADMIN if self.number % 2 else self.account.username)


class Hammer:
    def __init__(self, options: Options, url: str, mqtt_url: str, admin_password: str) -> None:
        self.options = options
        self.url = url
        self.mqtt_url = mqtt_url
        self.tally = Tally()
        self.ledger = Ledger()
        self.run_id = f"hammer-{secrets.token_hex(4)}"
        self.admin = Tokens(url, ADMIN, admin_password)
        self.tokens: dict[str, Tokens] = {ADMIN: self.admin}
        self.checks = Checks(options.log, self.tally)
        self.logins = OneAtATime(self.tally)
        self.worker_accounts: list[Account] = []
        """One per worker thread, for its bursts and per-message connections."""
        self.sessions: queue.Queue[PersistentSession] = queue.Queue()
        self.all_sessions: list[PersistentSession] = []
        self.readings = Readings([])
        self._kinds_lock = threading.Lock()
        self._not_run = [kind for kind in ACTIONS if options.weights.get(kind, 0) > 0]
        self.deadline = 0.0
        self.elapsed = 0.0

    @property
    def producers(self) -> list[str]:
        return [account.username for account in self.accounts]

    @property
    def accounts(self) -> list[Account]:
        return self.worker_accounts + [session.account for session in self.all_sessions]

    # setup

    def setup(self) -> None:
        """A producer login per worker and per persistent session, each able to publish."""
        workers = [f"{self.run_id}-w{n}" for n in range(self.options.workers)]
        sessions = [f"{self.run_id}-s{n}" for n in range(self.options.session_count)]
        accounts = create_accounts(
            self.url, self.mqtt_url, self.admin, workers + sessions, self.tally
        )
        self.worker_accounts = accounts[: len(workers)]
        for account in accounts[len(workers) :]:
            session = PersistentSession(account, self.ledger)
            self.all_sessions.append(session)
            self.sessions.put(session)
        for account in accounts:
            self.tokens[account.username] = Tokens(self.url, account.username, account.password)
        self.readings = Readings(self.producers)

    # the actions

    def burst(self, worker: Worker) -> None:
        """Publish a burst, then disconnect at once: what is PUBACKed before is counted."""
        count = worker.rng.randint(self.options.burst_min, self.options.burst_max)
        tracker = Tracker(self.ledger, worker.account.username)
        gone = threading.Event()

        def on_disconnect(*_: Any) -> None:
            gone.set()

        with self.logins.use(worker.account.username):
            client = worker.account.connect(inflight=count)
            client.on_publish = tracker.on_publish
            client.on_disconnect = on_disconnect
            for _ in range(count):
                tracker.publish(client, "burst")
            client.disconnect()
            gone.wait(15)
            client.loop_stop()
        self.tally.add("messages.burst", count)

    def per_message(self, worker: Worker) -> None:
        """A connection for each message, closed once it is acknowledged."""
        for _ in range(worker.rng.randint(1, 10)):
            tracker = Tracker(self.ledger, worker.account.username)
            with self.logins.use(worker.account.username):
                client = worker.account.connect()
                try:
                    client.on_publish = tracker.on_publish
                    tracker.publish(client, "per_message")
                    if not tracker.wait_acked(15):
                        self.tally.add("per_message.unacked")
                finally:
                    client.disconnect()
                    client.loop_stop()

    def persistent(self, worker: Worker) -> None:
        """Resume a persistent session, then cut its connection in the middle of a burst.

        Taken from the pool, the session (and its login) is this worker's alone until
        it is put back."""
        rng = worker.rng
        session = self.sessions.get()
        try:
            with self.logins.use(session.login):
                self._persistent(rng, session)
        finally:
            self.sessions.put(session)

    def _persistent(self, rng: random.Random, session: PersistentSession) -> None:
        """Resume, wait for what the last cut left unacknowledged, publish, cut."""
        if session.opened:
            self.tally.add("persistent.resumes")
        session.open()
        if session.opened > 1 and session.session_present:
            self.tally.add("persistent.session_present")
        if not session.tracker.wait_acked(15):
            self.tally.add("persistent.still_unacked_after_resume")
        count = rng.randint(self.options.burst_min, self.options.burst_max)
        cut = rng.randint(1, count - 1)
        for _ in range(cut):
            session.tracker.publish(session.client, "persistent")
        reset = rng.random() < 0.5
        session.kill(reset=reset)
        self.tally.add("persistent.abrupt_disconnects")
        self.tally.add("persistent.resets", reset)
        if rng.random() < 0.5:
            # the rest of the burst while offline: queued by paho, sent on resume
            for _ in range(count - cut):
                session.tracker.publish(session.client, "persistent")
            self.tally.add("persistent.published_offline", count - cut)

    def proof(self, worker: Worker) -> None:
        """Proofs of random stored readings, asked as their producer or as the admin,
        verified offline."""
        self.readings.poll(worker.apis, at_most_every=2.0)
        for _ in range(worker.rng.randint(1, 5)):
            reading = self.readings.pick(worker.rng, newest=worker.rng.random() < 0.3)
            if reading is None:
                self.tally.add("proofs.no_reading_yet")
                return
            asker = ADMIN if worker.rng.random() < 0.5 else reading.producer
            self.checks.proof(worker.apis(asker), reading)

    def consistency(self, worker: Worker) -> None:
        """Collect checkpoints, then prove an older one consistent with a newer one."""
        self.checks.consistency(worker.rng, worker.checkpoint_reader())

    # running

    def next_kind(self, rng: random.Random) -> str:
        """Each kind with a weight once first, then weighted at random."""
        with self._kinds_lock:
            if self._not_run:
                return self._not_run.pop(0)
        kinds = [kind for kind in ACTIONS if self.options.weights.get(kind, 0) > 0]
        return rng.choices(kinds, [self.options.weights[kind] for kind in kinds])[0]

    def worker(self, number: int) -> None:
        worker = Worker(
            number,
            random.Random(self.options.seed * 1000 + number),
            self.worker_accounts[number],
            Apis(self.url, self.tokens, self.tally),
        )
        actions: dict[str, Callable[[Worker], None]] = {
            "burst": self.burst,
            "per_message": self.per_message,
            "persistent": self.persistent,
            "proof": self.proof,
            "consistency": self.consistency,
        }
        try:
            while time.monotonic() < self.deadline:
                kind = self.next_kind(worker.rng)
                try:
                    actions[kind](worker)
                    self.tally.add(f"actions.{kind}")
                except Exception as error:
                    self.tally.fail("errors", f"{kind}: {type(error).__name__}: {error}")
        finally:
            worker.apis.close()

    def hammer(self) -> None:
        threads = [
            threading.Thread(target=self.worker, args=(n,), name=f"hammer-{n}", daemon=True)
            for n in range(self.options.workers)
        ]
        started = time.monotonic()
        self.deadline = started + self.options.seconds
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.elapsed = time.monotonic() - started

    def finish_sessions(self) -> None:
        """Once the workers are done: resume every persistent session until all it sent
        is acknowledged, then end it (a clean session of its own login drops its state)."""
        for session in self.all_sessions:
            if session.opened == 0:
                continue
            try:
                with self.logins.use(session.login):
                    session.open()
                    if not session.tracker.wait_acked(30):
                        self.tally.add("persistent.unacked_at_end", session.tracker.outstanding)
                    session.close()
                    session.end()
            except Exception as error:
                self.tally.fail("errors", f"ending the session of {session.login}: {error!r}")

    def drain(self, apis: Apis) -> float:
        """Wait (bounded) until every acknowledged payload is stored, then until nothing
        more arrives; returns the seconds waited."""
        started = time.monotonic()
        deadline = started + self.options.drain_seconds
        sent, acked = self.ledger.snapshot()
        wanted = {(sent[device].producer, device) for device in acked}
        while True:
            self.readings.poll(apis)
            if wanted <= set(self.readings.stored()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        settle_until = min(deadline, time.monotonic() + 10)
        last = sum(self.readings.stored().values())
        while time.monotonic() < settle_until:
            time.sleep(1)
            self.readings.poll(apis)
            now = sum(self.readings.stored().values())
            if now == last:
                break
            last = now
        return time.monotonic() - started

    def final_checks(self, apis: Apis) -> None:
        """One more checkpoint poll and a consistency check from the oldest to the newest."""
        self.checks.final(apis(ADMIN))
