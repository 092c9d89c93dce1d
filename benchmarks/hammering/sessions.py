"""The hammer's logins and MQTT sessions.

On the node's broker a connection's client id is its login, whatever id it asks for:
one session per login (a second connection with the same login takes the session
over), and a persistent session is the login's. So every producer account here is used
by one thread at a time: a worker's own account for its bursts and per-message
connections, and one account per persistent session, used by no one else.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from benchmarks.hammering.api import Api, Tokens
from benchmarks.hammering.ledger import PROBE_PREFIX, Ledger, Tally, Tracker, pmu_payload
from platone_bal.simulate import connect as mqtt_connect


@dataclass(frozen=True)
class Account:
    """A producer login of the hammer, publishing under platone/USERNAME/..."""

    url: str
    """The broker's mqtt://host:port."""
    username: str
    password: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 1883

    def connect(self, inflight: int = 20, clean_session: bool = True) -> mqtt.Client:
        """A connected client of this login (its client id is the login on the broker)."""
        return mqtt_connect(
            self.url,
            self.username,
            self.password,
            client_id=self.username,
            inflight=inflight,
            clean_session=clean_session,
        )


class OneAtATime:
    """Checks the hammer's own discipline: no login used by two threads at once (the
    broker would hand the first one's session to the second)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    @contextlib.contextmanager
    def use(self, login: str) -> Iterator[None]:
        with self._lock:
            clash = login in self._busy
            self._busy.add(login)
        if clash:
            self.tally.fail("errors", f"login {login} used by two threads at once")
        try:
            yield
        finally:
            if not clash:
                with self._lock:
                    self._busy.discard(login)


def create_accounts(
    url: str, mqtt_url: str, admin: Tokens, usernames: list[str], tally: Tally
) -> list[Account]:
    """Create these producers, then wait until each one can publish."""
    accounts = [Account(mqtt_url, name, secrets.token_urlsafe(18)) for name in usernames]
    for account in accounts:
        answer = httpx.post(
            f"{url}/v1/users",
            json={"username": account.username, "password": account.password, "role": "producer"},
            headers=admin.header(),
            timeout=30,
        )
        if answer.status_code != 201:
            raise RuntimeError(
                f"cannot create producer {account.username}: {answer.status_code} {answer.text}"
            )
    with ThreadPoolExecutor(max_workers=min(16, len(accounts))) as pool:
        list(pool.map(lambda account: probe(url, account, tally), accounts))
    return accounts


def probe(url: str, account: Account, tally: Tally, timeout: float = 60.0) -> None:
    """The broker learns a new user through the node: wait until a payload of it is
    acknowledged and stored. Probes are devices of their own, never counted."""
    api = Api(url, Tokens(url, account.username, account.password), tally)
    deadline = time.monotonic() + timeout
    try:
        for attempt in range(1, 10_000):
            device = f"{PROBE_PREFIX}{attempt}"
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                client = account.connect()
                try:
                    client.publish(f"platone/{account.username}/probe", pmu_payload(device), qos=1)
                    time.sleep(0.2)
                finally:
                    client.disconnect()
                    client.loop_stop()
            answer = api.get(
                "/v1/readings", {"producer": account.username, "device": device, "limit": 1}
            )
            if answer.status_code == 200 and answer.json()["items"]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"producer {account.username} cannot publish")
            time.sleep(0.3)
    finally:
        api.close()


class PersistentSession:
    """A clean_session=False client of its own login, whose socket a burst cuts abruptly.

    It does not reconnect by itself: the next action that takes it from the pool resumes
    it, and paho then sends again (DUP) every message not yet acknowledged. Its login is
    used by nothing else, so the broker's session of that login is this session's.
    """

    def __init__(self, account: Account, ledger: Ledger) -> None:
        self.account = account
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=account.username,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(account.username, account.password)
        self.client.max_inflight_messages_set(0)  # no limit: all of a burst goes out
        self.tracker = Tracker(ledger, account.username)
        self.client.on_publish = self.tracker.on_publish
        self.client.on_connect = self._on_connect
        self._connack = threading.Event()
        self._refusal: str | None = None
        self.session_present = False
        self.opened = 0
        self.up = False

    @property
    def login(self) -> str:
        return self.account.username

    def _on_connect(
        self, _: mqtt.Client, __: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, ___: Any
    ) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
        else:
            self.session_present = flags.session_present
        self._connack.set()

    def open(self) -> None:
        self._connack.clear()
        self._refusal = None
        if self.opened == 0:
            self.client.connect(self.account.host, self.account.port, keepalive=30)
        else:
            self.client.reconnect()
        self.client.loop_start()
        if not self._connack.wait(15) or self._refusal is not None:
            self.kill()
            raise ConnectionError(f"{self.login}: {self._refusal or 'no CONNACK'}")
        self.opened += 1
        self.up = True

    def kill(self, reset: bool = False) -> None:
        """Drop the connection without DISCONNECT, as a device losing power would: a FIN,
        or with `reset` a TCP RST (the broker may discard what it has not read yet)."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                if reset:  # paho closes the socket on the error: linger 0 makes that a RST
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
        self.client.loop_stop()
        self.up = False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.up = False

    def end(self) -> None:
        """Drop the broker's state of this session: a clean-session connection of its
        login (the session's own login, so nothing else is touched)."""
        client = self.account.connect()
        client.disconnect()
        client.loop_stop()
