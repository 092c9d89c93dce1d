"""One `bal stack` (PostgreSQL with fsync on, Mosquitto with TLS and Dynamic Security,
ganache, N `bal up` nodes sharing the ingest, one leader) in a fresh temporary
directory, its producers, and what is read of it: the store (psycopg, as the
superuser) and each node's /metrics."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.scaling.publish import Login
from platone_bal.domain.users import producer_topic
from platone_bal.simulate import connect, one_reading_payload
from platone_bal.stack.run import Stack, StackState, free_port

LOG = "bal-main"
PASSWORD = "producer-pass-1"
HEALTHY_TIMEOUT = 90.0


@dataclass(frozen=True)
class Counts:
    messages: int
    readings: int
    """Readings of the stored messages (sequenced or queued)."""
    logged: int
    """Size of bal-main: readings with their index."""
    queued: int
    signed: int
    """Size of bal-main's latest signed checkpoint."""


COUNTS = (
    "SELECT (SELECT count(*) FROM messages), (SELECT coalesce(sum(readings), 0) FROM messages),"
    " coalesce((SELECT size FROM log_heads WHERE log = %(log)s), 0),"
    " (SELECT count(*) FROM log_queue),"
    " coalesce((SELECT max(size) FROM checkpoints WHERE log = %(log)s), 0)"
)


class RunningStack:
    """A stack that is up: its state, its store, its nodes."""

    def __init__(self, stack: Stack, state: StackState) -> None:
        self.stack = stack
        self.state = state
        self.directory = stack.directory
        self.db = psycopg.connect(stack.database_url(state), autocommit=True)
        self.restarted: list[subprocess.Popen[bytes]] = []
        self.front = f"http://127.0.0.1:{state.http_port}"
        self.ca_file = stack.broker(state).ca_file
        self._admin: dict[str, str] | None = None

    # the store

    def counts(self) -> Counts:
        row = self.db.execute(COUNTS, {"log": LOG}).fetchone()
        assert row is not None
        return Counts(*(int(value) for value in row))

    def wait_settled(self, timeout: float = 120.0) -> Counts:
        """Until no leaf waits for the sequencer and a signed checkpoint covers the log."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts()
            if counts.queued == 0 and counts.signed >= counts.logged:
                return counts
            if time.monotonic() > deadline:
                raise TimeoutError(f"the log did not settle: {counts}")
            time.sleep(0.1)

    # the nodes

    def node_port(self, number: int) -> int:
        return self.state.node_ports[number - 1]

    def metrics(self, number: int, timeout: float = 2.0) -> dict[str, float] | None:
        """Node `number`'s unlabelled samples and the sums of labelled ones by name;
        None when it does not answer."""
        try:
            answer = httpx.get(
                f"http://127.0.0.1:{self.node_port(number)}/metrics", timeout=timeout
            )
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        found: dict[str, float] = {}
        for line in answer.text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            name = name.split("{", 1)[0]
            with contextlib.suppress(ValueError):
                found[name] = found.get(name, 0.0) + float(value)
        return found

    def leaders(self, numbers: list[int] | None = None) -> list[int]:
        found = []
        for number in numbers or list(range(1, self.state.nodes + 1)):
            sample = self.metrics(number, timeout=0.5)
            if sample is not None and sample.get("bal_leader") == 1.0:
                found.append(number)
        return found

    def restart(self, number: int) -> None:
        """`bal up` of node `number` again, as `Stack._start_node` starts it; recorded in
        stack.json so that `Stack.down` stops it."""
        name = f"node{number}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("BAL_")}
        env = {**inherited, "ETH_HASH_BACKEND": "pysha3", **self.stack.node_env(self.state, number)}
        with (self.directory / "logs" / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "platone_bal.cli", "up"],
                env=env,
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.restarted.append(process)
        self.state.pids[name] = process.pid
        self.state.save(self.directory)
        wait_for(lambda: self._healthy(number), HEALTHY_TIMEOUT, f"{name} to come back")

    def _healthy(self, number: int) -> bool:
        try:
            url = f"http://127.0.0.1:{self.node_port(number)}/healthz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # what the processes used

    def usage(self) -> dict[str, dict[str, float]]:
        """CPU seconds and bytes written so far by Mosquitto, each node and PostgreSQL
        (the postmaster and its living children)."""
        pids = {name: [pid] for name, pid in self.state.pids.items() if name != "chain"}
        pids.pop("proxy", None)
        postmaster = self.stack.postgres(self.state).data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(postmaster.read_text().split()[0])
            pids["postgres"] = [parent, *children(parent)]
        return {name: process_usage(group) for name, group in pids.items()}

    # producers

    def admin(self) -> dict[str, str]:
        if self._admin is None:
            password = (self.directory / "secrets" / "admin-password").read_text().strip()
            answer = httpx.post(
                f"{self.front}/oauth/token",
                data={"grant_type": "password", "username": "admin", "password": password},
                timeout=20,
            )
            answer.raise_for_status()
            self._admin = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        return self._admin

    def add_producers(self, names: list[str]) -> list[Login]:
        """Producers made through the front; each may publish once a probe of it is
        stored (the leader has put its rules into the broker)."""
        logins = []
        for name in names:
            created = httpx.post(
                f"{self.front}/v1/users",
                json={"username": name, "password": PASSWORD, "role": "producer"},
                headers=self.admin(),
                timeout=20,
            )
            if created.status_code != 201:
                raise RuntimeError(f"creating {name}: {created.status_code} {created.text}")
            login = Login(f"mqtts://127.0.0.1:{self.state.mqtt_port}", name, PASSWORD, self.ca_file)
            self._probe(login)
            logins.append(login)
        return logins

    def _probe(self, login: Login, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for attempt in range(1, 1000):
            topic = f"{producer_topic(login.username)}/probe-{login.username}-{attempt}"
            try:
                client = connect(login.url, login.username, login.password, ca_file=login.ca_file)
                try:
                    client.publish(topic, one_reading_payload(topic.rsplit("/", 1)[1]), qos=1)
                finally:
                    client.disconnect()
                    client.loop_stop()
            except (ConnectionError, OSError, RuntimeError, ValueError):
                pass
            with contextlib.suppress(TimeoutError):
                wait_for(partial(self._stored, topic), 3, "the probe", 0.05)
                return
            if time.monotonic() > deadline:
                break
        raise RuntimeError(f"producer {login.username} cannot publish to the stack")

    def _stored(self, topic: str) -> bool:
        row = self.db.execute("SELECT count(*) FROM messages WHERE topic = %s", (topic,))
        found = row.fetchone()
        return found is not None and int(found[0]) > 0


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
    return found


def process_usage(pids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system, all threads) and bytes written to storage by `pids`."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = written = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("write_bytes:"):
                    written += int(line.split()[1])
    return {"cpu_s": cpu, "written_bytes": written}


def used(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """What each process used between two `usage()` readings."""
    return {
        name: {key: after[name][key] - before.get(name, {}).get(key, 0.0) for key in after[name]}
        for name in after
    }


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def running_stack(nodes: int, say: Callable[[str], None]) -> Iterator[RunningStack]:
    """A stack of `nodes` nodes in a new temporary directory; down and removed after,
    also on errors."""
    directory = Path(tempfile.mkdtemp(prefix=f"bal-scale-{nodes}n-"))
    stack = Stack(directory, say=say)
    running: RunningStack | None = None
    try:
        state = stack.up(nodes=nodes, http_port=free_port(), mqtt_port=free_port())
        running = RunningStack(stack, state)
        yield running
    finally:
        if running is not None:
            running.db.close()
        if (directory / "stack.json").exists():
            try:
                stack.down()
            except Exception as error:  # still remove what can be removed
                say(f"stack down failed: {error}")
        if running is not None:
            for process in running.restarted:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
        stack.remove()  # with the PostgreSQL cluster it may link to (run as root)


def describe(running: RunningStack) -> dict[str, Any]:
    settings = running.db.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN"
        " ('fsync', 'synchronous_commit', 'server_version', 'shared_buffers')"
    ).fetchall()
    return {"nodes": running.state.nodes, "postgres": {name: value for name, value in settings}}
