"""Harness for fault tests: a real `bal up` process and publishers that know what was acked.

`BalProcess` runs `bal up` on free ports with its own data directory (the ports stay the
same across restarts, so publishers can reconnect), and can stop it with SIGTERM, kill it
with SIGKILL, find its Mosquitto child through the pid file, and read the store.

`Publisher` publishes unique one-reading PMU payloads with paho (MQTT 3.1.1) and records
exactly which ones the broker acknowledged (PUBACK), so a test can demand that each of
those is stored exactly once. Run as `python -m tests.integration.bal_process publish ...`
it does the same in a process of its own, appending every acknowledged number to a file
as it arrives (a plain `write`, so it survives a SIGKILL of that process).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client.parser import text_string_to_metric_families

from platone_bal.simulate import one_reading_payload
from tests.conftest import free_port, require_binary
from tests.integration.stores import store_env

ROOT = Path(__file__).resolve().parents[2]
BAL = Path(sys.executable).with_name("bal")
ADMIN_PASSWORD = "admin-pass-faults-1"
PRODUCER_PASSWORD = "producer-pass-1"
LOG_ID = "bal-main"


pmu_payload = one_reading_payload
"""A one-reading PMU payload, unique by its device id."""


def device_name(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# the node


class BalProcess:
    """One `bal up` process on a data directory; restartable on the same ports."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        anchor_interval: float = 2.0,
    ) -> None:
        require_binary("mosquitto")
        self.data_dir = data_dir
        self.http_port = free_port()
        self.mqtt_port = free_port()
        self.chain_rpc_port = free_port()
        self.mqtt_tls_port = free_port()  # not opened (no TLS), but must not collide
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.rpc_url = f"http://127.0.0.1:{self.chain_rpc_port}"
        self.extra_env = {**store_env(data_dir), **(env or {})}
        self.anchor_interval = anchor_interval
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.logs: list[Path] = []
        self._token: str | None = None

    @property
    def env(self) -> dict[str, str]:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("BAL_") or key == "BAL_REQUIRE_INTEGRATION"
        }
        return inherited | {
            "BAL_DATA_DIR": str(self.data_dir),
            "BAL_HTTP_PORT": str(self.http_port),
            "BAL_MQTT_PORT": str(self.mqtt_port),
            "BAL_MQTT_TLS_PORT": str(self.mqtt_tls_port),
            "BAL_CHAIN_RPC_PORT": str(self.chain_rpc_port),
            "BAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "BAL_ANCHOR_INTERVAL": str(self.anchor_interval),
            **self.extra_env,
        }

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 60.0) -> BalProcess:
        """Start `bal up` and wait until /healthz answers."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        log = self.data_dir.parent / f"bal-up-{self.data_dir.name}-{self.starts}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BAL), "up"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._token = None
        wait_until(self._healthy_or_dead, timeout, f"bal up healthy\n{self.log_tail()}")
        if self.process.poll() is not None:
            raise AssertionError(f"bal up exited with {self.process.returncode}\n{self.log_tail()}")
        return self

    def _healthy_or_dead(self) -> bool:
        return self.healthy() or (self.process is not None and self.process.poll() is not None)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on /metrics (0 if it has none)."""
        text = httpx.get(f"{self.base}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    def sigterm(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.sigterm()
        return self.wait(timeout)

    def kill(self) -> None:
        """kill -9 the node (not its Mosquitto: that one gets the parent-death signal)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.logs or not self.logs[-1].exists():
            return "(no log)"
        text = self.logs[-1].read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # the node's Mosquitto

    @property
    def mosquitto_dir(self) -> Path:
        return self.data_dir / "mosquitto"

    def mosquitto_pid(self) -> int | None:
        """The pid in the pid file if that process is this data dir's Mosquitto and runs."""
        try:
            pid = int((self.mosquitto_dir / "mosquitto.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        conf = str(self.mosquitto_dir / "mosquitto.conf").encode()
        if not cmdline or not cmdline[0].endswith(b"mosquitto") or conf not in cmdline:
            return None
        return pid if process_alive(pid) else None

    def cleanup(self) -> None:
        """Kill the node and any Mosquitto of its data dir still running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        pid = self.mosquitto_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not process_alive(pid), 10, "leftover mosquitto to die")

    # HTTP

    def token(self) -> str:
        if self._token is None:
            answer = httpx.post(
                f"{self.base}/oauth/token",
                data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
                timeout=10,
            )
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        return self._token

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def add_producer(self, name: str, password: str = PRODUCER_PASSWORD) -> None:
        """Create a producer, then wait until a payload of it makes it into the store (so
        the broker's rules for it are in place before a test counts on them)."""
        created = httpx.post(
            f"{self.base}/v1/users",
            json={"username": name, "password": password, "role": "producer"},
            headers=self.admin,
            timeout=20,
        )
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 30
        attempt = 0
        while True:
            attempt += 1
            probe = f"probe-{name}-{attempt}"
            try:
                client = connect_client(self.mqtt_port, name, password)
                try:
                    client.publish(f"platone/{name}/probe", pmu_payload(probe), qos=1)
                    client.wait_published(5)
                finally:
                    client.close()
            except (ConnectionError, OSError, TimeoutError, RuntimeError):
                pass
            try:
                wait_until(
                    lambda probe=probe: probe in self.stored_counts("probe-"),  # type: ignore[misc]
                    2,
                    "probe",
                    0.05,
                )
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"producer {name} cannot publish\n{self.log_tail()}"
                    ) from None

    def proof(self, reading_id: int) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.base}/v1/readings/{reading_id}/proof", headers=self.admin, timeout=10
        )
        answer.raise_for_status()
        return dict(answer.json())

    # the store, read directly

    @property
    def db_path(self) -> Path:
        return self.data_dir / "scd.sqlite3"

    def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """A read-only query on the node's store (running or not): its SQLite file, or
        its PostgreSQL database with BAL_STORE=postgres (`?` marks become `%s`)."""
        if self.extra_env.get("BAL_STORE") == "postgres":
            url = self.extra_env["BAL_DATABASE_URL"]
            with psycopg.connect(url, autocommit=True) as pg:
                return list(pg.execute(sql.replace("%", "%%").replace("?", "%s"), args).fetchall())  # type: ignore[arg-type]
        if not self.db_path.exists():
            return []
        uri = f"file:{self.db_path}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            db.execute("PRAGMA busy_timeout = 30000")
            return list(db.execute(sql, args).fetchall())

    def stored_counts(self, prefix: str) -> Counter[str]:
        """Readings stored per device, for the devices whose id starts with `prefix`."""
        rows = self.query(
            "SELECT device, COUNT(*) FROM readings WHERE device >= ? AND device < ? "
            "GROUP BY device",
            prefix,
            prefix + "\U0010ffff",
        )
        return Counter({str(device): int(count) for device, count in rows})

    def readings_of(self, prefix: str) -> list[tuple[int, int, str]]:
        """(id, idx, device) of the readings of devices starting with `prefix`, by id."""
        rows = self.query(
            "SELECT id, idx, device FROM readings WHERE device >= ? AND device < ? ORDER BY id",
            prefix,
            prefix + "\U0010ffff",
        )
        return [(int(a), int(b), str(c)) for a, b, c in rows]

    def log_size(self) -> int:
        rows = self.query("SELECT MAX(idx) FROM readings WHERE log = ?", LOG_ID)
        return int(rows[0][0]) + 1 if rows and rows[0][0] is not None else 0

    def anchored_size(self) -> int:
        rows = self.query("SELECT MAX(size) FROM anchors WHERE log = ?", LOG_ID)
        return int(rows[0][0] or 0) if rows else 0


# publishers


class PublishClient:
    """A paho client (MQTT 3.1.1) with its network loop in a thread."""

    def __init__(
        self,
        port: int,
        username: str,
        password: str,
        *,
        client_id: str = "",
        clean_session: bool = True,
        inflight: int = 100,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(inflight)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.port = port
        self.connected = threading.Event()
        self.refusal: str | None = None
        self.connects = 0
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def _on_connect(self, _: Any, __: Any, ___: Any, reason: ReasonCode, ____: Any) -> None:
        if reason.is_failure:
            self.refusal = str(reason)
        else:
            self.connects += 1
            self.connected.set()

    def _on_disconnect(self, *_: Any) -> None:
        self.connected.clear()

    def open(self, timeout: float = 10.0) -> PublishClient:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.connected.wait(0.05):
            if self.refusal is not None or time.monotonic() > deadline:
                self.close()
                raise ConnectionError(f"not connected: {self.refusal or 'no answer'}")
        return self

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos)
        self._infos.append(info)
        return info

    def wait_published(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(info.is_published() for info in self._infos):
            if time.monotonic() > deadline:
                raise TimeoutError("not all published")
            time.sleep(0.01)

    def close(self, timeout: float = 10.0) -> None:
        """DISCONNECT once every packet queued before it is written (paho writes its
        queue, then DISCONNECT, then closes), then stop the loop."""
        self.client.disconnect()
        deadline = time.monotonic() + timeout
        while self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.client.loop_stop()


def connect_client(port: int, username: str, password: str, **options: Any) -> PublishClient:
    return PublishClient(port, username, password, **options).open()


@dataclass
class Tally:
    """What one publishing run sent and what the broker acknowledged."""

    prefix: str
    sent: list[str] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)


class AckTracker:
    """Which numbered messages paho has seen acknowledged, from `on_publish` by mid.

    paho may handle a PUBACK (and call `on_publish`) before `publish()` has returned the
    mid to its caller; such an early mid is kept until the caller registers it. A QoS 1
    message resent after a reconnect keeps its mid, so it counts once it is acked.
    """

    def __init__(self, on_ack: Callable[[int], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}
        self._early: set[int] = set()
        self._on_ack = on_ack
        self.sent = 0
        self.acked: set[int] = set()

    def register(self, mid: int, number: int) -> None:
        """Message `number` went out (or was queued) as `mid`."""
        with self._lock:
            self.sent += 1
            if mid in self._early:
                self._early.discard(mid)
                self._ack(number)
            else:
                if mid in self._pending:
                    raise RuntimeError(f"paho reused mid {mid} while it was unacked")
                self._pending[mid] = number

    def on_publish(self, mid: int) -> None:
        with self._lock:
            number = self._pending.pop(mid, None)
            if number is None:
                self._early.add(mid)
            else:
                self._ack(number)

    def _ack(self, number: int) -> None:
        self.acked.add(number)
        if self._on_ack is not None:
            self._on_ack(number)

    @property
    def unacked(self) -> int:
        with self._lock:
            return len(self._pending)


class Publisher:
    """Publishes unique QoS 1 (or 0) PMU payloads as one producer and records each PUBACK.

    With paho's loop running, a lost connection is re-established by paho (1-2 s apart)
    and what was not acknowledged is sent again; messages published meanwhile are queued.
    """

    def __init__(
        self,
        port: int,
        producer: str,
        prefix: str,
        *,
        password: str = PRODUCER_PASSWORD,
        client_id: str = "",
        clean_session: bool = True,
        qos: int = 1,
        inflight: int = 100,
        on_sent: Callable[[int], None] | None = None,
        on_ack: Callable[[int], None] | None = None,
    ) -> None:
        self.port, self.producer, self.prefix = port, producer, prefix
        self.qos = qos
        self.topic = f"platone/{producer}/{prefix}"
        self.client = PublishClient(
            port,
            producer,
            password,
            client_id=client_id,
            clean_session=clean_session,
            inflight=inflight,
        )
        self.tracker = AckTracker(on_ack)
        self._on_sent = on_sent
        self.client.client.on_publish = self._on_publish
        self._triggers: list[tuple[int, Callable[[], object]]] = []
        self.next_number = 0
        self.stopped = threading.Event()

    @property
    def acks(self) -> int:
        return len(self.tracker.acked)

    def open(self, timeout: float = 10.0) -> Publisher:
        self.client.open(timeout)
        _LIVE_PUBLISHERS.append(self)
        return self

    def when_acked(self, count: int, action: Callable[[], object]) -> None:
        """Run `action` in paho's loop the moment `count` PUBACKs are in (before paho
        reads anything more), e.g. a DISCONNECT, a dropped socket or a kill -9."""
        self._triggers.append((count, action))

    def _on_publish(self, _: Any, __: Any, mid: int, ___: Any, ____: Any) -> None:
        self.tracker.on_publish(mid)
        acks = self.acks
        for trigger in [t for t in self._triggers if acks >= t[0]]:
            self._triggers.remove(trigger)
            trigger[1]()

    def close_socket(self) -> None:
        """For `when_acked`, in paho's loop: close the TCP socket (`socket().close()`, no
        MQTT DISCONNECT; with PUBACKs unread the kernel resets the connection). paho reads
        nothing more, sees the connection lost and would reconnect only after a minute
        (see `drop_socket` and `resume`)."""
        self.client.client.reconnect_delay_set(min_delay=60, max_delay=60)
        sock = self.client.client.socket()
        if isinstance(sock, socket.socket):
            sock.close()

    def publish(self, count: int, *, pace: float = 0.0) -> None:
        """Publish `count` new messages (paho queues them while disconnected)."""
        for _ in range(count):
            if self.stopped.is_set():
                return
            number = self.next_number
            self.next_number += 1
            payload = pmu_payload(device_name(self.prefix, number))
            info = self.client.client.publish(self.topic, payload, qos=self.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                raise RuntimeError(f"paho refused to queue message {number}: {info.rc}")
            if self._on_sent is not None:
                self._on_sent(number)
            self.tracker.register(info.mid, number)
            if pace:
                time.sleep(pace)

    def publish_for(
        self, seconds: float, batch: int = 50, pace: float = 0.0, backlog: int = 2000
    ) -> None:
        """Publish batches until `seconds` pass or `stop()` is called, never more than
        `backlog` unacknowledged (paho queues them while the broker is away)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopped.is_set():
            self.publish(batch, pace=pace)
            self.wait_backlog(backlog)

    def wait_backlog(self, most: int) -> None:
        """Wait until at most `most` messages wait for their PUBACK (or a stop)."""
        while self.tracker.unacked > most and not self.stopped.is_set():
            time.sleep(0.01)

    def stop(self) -> None:
        self.stopped.set()

    def wait_all_acked(self, timeout: float) -> None:
        wait_until(
            lambda: self.tracker.unacked == 0,
            timeout,
            f"PUBACKs of {self.prefix} ({self.acks}/{self.tracker.sent})",
            0.02,
        )

    def tally(self) -> Tally:
        return Tally(
            self.prefix,
            [device_name(self.prefix, number) for number in range(self.next_number)],
            {device_name(self.prefix, number) for number in set(self.tracker.acked)},
        )

    def disconnect(self) -> None:
        """A clean DISCONNECT (then the network loop stops)."""
        self.client.close()

    def drop_socket(self) -> None:
        """Drop the connection without DISCONNECT (unless `close_socket` did already: from
        this thread, a shutdown, as closing a socket under paho's select is unsafe) and stop
        paho's loop: the PUBACKs counted are those received before the drop."""
        if self.client.connected.is_set():
            self.client.client.reconnect_delay_set(min_delay=60, max_delay=60)
            sock = self.client.client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        wait_until(lambda: not self.client.connected.is_set(), 10, "paho to see the drop", 0.01)
        self.client.client.loop_stop()

    def resume(self) -> None:
        """Reconnect after `drop_socket` (same client id and session flag); paho sends
        again every message not acknowledged."""
        self.client.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.client.reconnect()
        self.client.client.loop_start()


_LIVE_PUBLISHERS: list[Publisher] = []


def stop_publishers() -> None:
    """Stop every Publisher opened in this process and its paho loop (test teardown)."""
    while _LIVE_PUBLISHERS:
        publisher = _LIVE_PUBLISHERS.pop()
        publisher.stop()
        publisher.client.client.loop_stop()


@dataclass
class PublisherProcess:
    """A Publisher in a process of its own (`python -m tests.integration.bal_process`)."""

    process: subprocess.Popen[bytes]
    record: Path
    prefix: str

    @classmethod
    def start(
        cls,
        workdir: Path,
        port: int,
        producer: str,
        prefix: str,
        *,
        count: int = 0,
        seconds: float = 0.0,
        reconnect: bool = False,
        backlog: int = 2000,
    ) -> PublisherProcess:
        record = workdir / f"publisher-{prefix}.record"
        record.touch()
        arguments = [
            sys.executable,
            "-m",
            "tests.integration.bal_process",
            "publish",
            f"--port={port}",
            f"--producer={producer}",
            f"--prefix={prefix}",
            f"--record={record}",
            f"--count={count}",
            f"--seconds={seconds}",
            f"--backlog={backlog}",
        ]
        if reconnect:
            arguments.append("--reconnect")
        process = subprocess.Popen(
            arguments,
            cwd=ROOT,
            stdout=(workdir / f"publisher-{prefix}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        return cls(process, record, prefix)

    def lines(self) -> list[str]:
        return self.record.read_text().splitlines()

    def acked_count(self) -> int:
        return sum(1 for line in self.lines() if line.startswith("a "))

    def tally(self) -> Tally:
        """What the process published and what was acked, as far as it got."""
        tally = Tally(self.prefix)
        for line in self.lines():
            kind, _, number = line.partition(" ")
            if not number.strip().isdigit():
                continue  # a line cut by a SIGKILL
            device = device_name(self.prefix, int(number))
            if kind == "s":
                tally.sent.append(device)
            elif kind == "a":
                tally.acked.add(device)
        return tally

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def _publish_main(arguments: list[str]) -> None:
    """The publisher process: publish, write `s N` per publish and `a N` per PUBACK;
    SIGINT stops publishing, waits up to 10 s for the last PUBACKs and disconnects."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--producer", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--reconnect", action="store_true")
    parser.add_argument("--backlog", type=int, default=2000)
    options = parser.parse_args(arguments)
    fd = os.open(options.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def line(kind: str) -> Callable[[int], None]:
        def write(number: int) -> None:
            os.write(fd, f"{kind} {number}\n".encode())  # in the kernel at once

        return write

    publisher = Publisher(
        options.port, options.producer, options.prefix, on_sent=line("s"), on_ack=line("a")
    )
    signal.signal(signal.SIGINT, lambda *_: publisher.stop())
    while True:
        try:
            publisher.open()
            break
        except (ConnectionError, OSError):
            if not options.reconnect:
                raise
            publisher.client.client.loop_stop()
            time.sleep(0.5)
    deadline = time.monotonic() + options.seconds
    while not publisher.stopped.is_set():
        if options.count and publisher.next_number >= options.count:
            break
        if options.seconds and time.monotonic() > deadline:
            break
        publisher.publish(10)
        publisher.wait_backlog(options.backlog)  # no endless queue while the broker is away
        if publisher.next_number >= 65000:
            raise SystemExit("paho message ids would wrap")
    with contextlib.suppress(AssertionError):
        publisher.wait_all_acked(10)
    publisher.disconnect()
    os.close(fd)


# checks shared by the fault tests


@dataclass
class Outcome:
    """Acked versus stored for one scenario's devices."""

    sent: int
    acked: int
    stored: int
    duplicates: dict[str, int]
    lost: list[str]
    stored_unacked: int

    def line(self, name: str) -> str:
        return (
            f"{name}: sent={self.sent} acked={self.acked} stored={self.stored} "
            f"duplicates={len(self.duplicates)} lost={len(self.lost)} "
            f"stored_unacked={self.stored_unacked}"
        )


def outcome(node: BalProcess, tallies: Iterable[Tally]) -> Outcome:
    sent: list[str] = []
    acked: set[str] = set()
    counts: Counter[str] = Counter()
    for tally in tallies:
        sent += tally.sent
        acked |= tally.acked
        counts += node.stored_counts(tally.prefix + "-")
    duplicates = {device: n for device, n in counts.items() if n > 1}
    lost = sorted(acked - set(counts))
    return Outcome(
        sent=len(sent),
        acked=len(acked),
        stored=len(counts),
        duplicates=duplicates,
        lost=lost,
        stored_unacked=len(set(counts) - acked),
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        _publish_main(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m tests.integration.bal_process publish ...")
