"""The node's HTTP API as the hammer uses it: tokens, GETs, and the stored readings of
the hammer's producers followed page by page."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.hammering.ledger import Stored, Tally

PAGE = 1000
ADMIN = "admin"


class Tokens:
    """A bearer token of one user, fetched once and again when it expires."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base, self.username, self.password = base, username, password
        self._lock = threading.Lock()
        self._token: str | None = None

    def header(self, refresh: bool = False) -> dict[str, str]:
        with self._lock:
            if self._token is None or refresh:
                answer = httpx.post(
                    f"{self.base}/oauth/token",
                    data={
                        "grant_type": "password",
                        "username": self.username,
                        "password": self.password,
                    },
                    timeout=30,
                )
                answer.raise_for_status()
                self._token = str(answer.json()["access_token"])
            return {"Authorization": f"Bearer {self._token}"}


class Api:
    """GETs as one user: a new token on 401, waits out 429 (counted), 5xx are failures."""

    def __init__(self, base: str, tokens: Tokens, tally: Tally) -> None:
        # The client lets an idle connection go before the server's keep-alive (5 s) does:
        # with equal timeouts a GET can go out on a connection the server is closing, and
        # comes back as "Server disconnected without sending a response".
        self.http = httpx.Client(
            base_url=base, timeout=60, limits=httpx.Limits(keepalive_expiry=2.0)
        )
        self.tokens = tokens
        self.tally = tally

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        refreshed = False
        for _ in range(60):
            answer = self.http.get(path, params=params, headers=self.tokens.header())
            if answer.status_code == 401 and not refreshed:
                self.tokens.header(refresh=True)
                refreshed = True
                continue
            if answer.status_code == 429:
                self.tally.add("http.throttled")
                time.sleep(min(2.0, float(answer.headers.get("Retry-After", "1"))))
                continue
            if answer.status_code >= 500:
                self.tally.fail("http_errors", f"GET {path}: {answer.status_code} {answer.text}")
            return answer
        return answer

    def ok(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON of a 200 answer; anything else is recorded as an HTTP failure."""
        answer = self.get(path, params)
        if answer.status_code != 200:
            if answer.status_code < 500:
                self.tally.fail("http_errors", f"GET {path}: {answer.status_code} {answer.text}")
            return None
        return answer.json()

    def close(self) -> None:
        self.http.close()


class Apis:
    """The Api of each login (the admin or a producer) for one thread, made on first use."""

    def __init__(self, base: str, tokens: dict[str, Tokens], tally: Tally) -> None:
        self.base, self.tokens, self.tally = base, tokens, tally
        self._made: dict[str, Api] = {}

    def __call__(self, username: str) -> Api:
        api = self._made.get(username)
        if api is None:
            api = self._made[username] = Api(self.base, self.tokens[username], self.tally)
        return api

    def close(self) -> None:
        for api in self._made.values():
            api.close()
        self._made.clear()


@dataclass(frozen=True)
class Reading:
    id: int
    index: int
    producer: str
    device: str


class ReadingTail:
    """One producer's stored readings, followed page by page (the listing's own cursors).

    The cursor of the last full page is kept; the partial page after it is read again
    at the next poll, so nothing committed later is missed. Polls run one at a time.
    """

    def __init__(self, producer: str, found: Callable[[Reading], None]) -> None:
        self.producer = producer
        self._found = found
        self._polling = threading.Lock()
        self._cursor: str | None = None
        self._last_poll = 0.0

    def poll(self, api: Api, at_most_every: float = 0.0) -> None:
        if time.monotonic() - self._last_poll < at_most_every:
            return
        if not self._polling.acquire(blocking=at_most_every == 0.0):
            return  # someone else is polling right now
        try:
            while True:
                params: dict[str, Any] = {"producer": self.producer, "limit": PAGE}
                if self._cursor is not None:
                    params["cursor"] = self._cursor
                page = api.ok("/v1/readings", params)
                if page is None:
                    return
                for item in page["items"]:
                    self._found(
                        Reading(int(item["id"]), int(item["index"]), self.producer, item["device"])
                    )
                if page["next_cursor"] is None:
                    break
                self._cursor = page["next_cursor"]
            self._last_poll = time.monotonic()
        finally:
            self._polling.release()


class Readings:
    """The stored readings of all the hammer's producers, each listed by its own login."""

    def __init__(self, producers: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self.tails = [ReadingTail(producer, self._found) for producer in producers]
        self.readings: dict[int, Reading] = {}
        self._ids: list[int] = []
        self._by_key: dict[tuple[str, str], set[int]] = {}

    def _found(self, reading: Reading) -> None:
        with self._lock:
            if reading.id not in self.readings:
                self.readings[reading.id] = reading
                self._ids.append(reading.id)
                self._by_key.setdefault((reading.producer, reading.device), set()).add(reading.id)

    def poll(self, apis: Apis, at_most_every: float = 0.0) -> None:
        for tail in self.tails:
            tail.poll(apis(tail.producer), at_most_every)

    def pick(self, rng: random.Random, newest: bool = False) -> Reading | None:
        """A random reading seen so far, or one of the 100 newest."""
        with self._lock:
            if not self._ids:
                return None
            return self.readings[rng.choice(self._ids[-100:] if newest else self._ids)]

    def stored(self) -> Stored:
        """Readings per (producer, device)."""
        with self._lock:
            return Counter({key: len(ids) for key, ids in self._by_key.items()})
