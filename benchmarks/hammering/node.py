"""The node under test: its own `bal up` on free ports, its metrics and its store."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import free_port

from benchmarks.hammering.ledger import Stored

BAL = Path(sys.executable).with_name("bal")


class OwnNode:
    """`bal up` in a temporary data dir on free ports, stopped with SIGTERM."""

    def __init__(self, extra_env: dict[str, str], anchor_interval: float) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bal-hammer-"))
        self.data_dir = self.root / "data"
        self.log = self.root / "bal-up.log"
        self.http_port, self.mqtt_port = free_port(), free_port()
        self.password = secrets.token_urlsafe(18)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.mqtt_url = f"mqtt://127.0.0.1:{self.mqtt_port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("BAL_")}
        self.env = env | {
            "BAL_DATA_DIR": str(self.data_dir),
            "BAL_HTTP_PORT": str(self.http_port),
            "BAL_MQTT_PORT": str(self.mqtt_port),
            "BAL_MQTT_TLS_PORT": str(free_port()),
            "BAL_CHAIN_RPC_PORT": str(free_port()),
            "BAL_ADMIN_PASSWORD": self.password,
            "BAL_ANCHOR_INTERVAL": str(anchor_interval),
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def start(self, timeout: float = 120.0) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BAL), "up"],
                env=self.env,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"bal up exited with {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"bal up not healthy after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 90.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`); the exit code, None if killed."""
        if self.process is None or self.exit_code is not None:
            return self.exit_code
        self.process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            self.exit_code = None
        return self.exit_code

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


NODE_METRICS = {
    "bal_ingest_duplicates_total": "redeliveries_stored_once",
    "bal_ingest_rejections_total": "rejections",
    "bal_ingest_poison_total": "poison",
    "bal_ingest_write_retries_total": "write_retries",
    "bal_broker_restarts_total": "broker_restarts",
    "bal_http_rate_limited_total": "http_rate_limited",
    "bal_anchor_failures_total": "anchor_failures",
}
"""Node-wide counters worth reporting, from GET /metrics, by the report's name."""


def node_metrics(url: str) -> dict[str, float] | None:
    """The counters of NODE_METRICS (None if /metrics does not answer)."""
    try:
        answer = httpx.get(f"{url}/metrics", timeout=30)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    found: dict[str, float] = {}
    for line in answer.text.splitlines():
        name, _, value = line.partition(" ")
        if name in NODE_METRICS:
            found[NODE_METRICS[name]] = float(value)
    return found


def store_counts(data_dir: Path, producers: Iterable[str]) -> dict[str, Any]:
    """Exact counts of these producers from the node's SQLite store, opened read-only:
    readings per (producer, device), and messages per outcome."""
    names = sorted(set(producers))
    marks = ", ".join("?" * len(names))
    uri = f"file:{data_dir / 'scd.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
        db.execute("PRAGMA busy_timeout = 30000")
        rows = db.execute(
            "SELECT producer, device, COUNT(*) FROM readings"  # noqa: S608 (only ? marks)
            f" WHERE producer IN ({marks}) GROUP BY producer, device",
            names,
        ).fetchall()
        outcomes = db.execute(
            "SELECT outcome, COUNT(*) FROM messages"  # noqa: S608 (only ? marks)
            f" WHERE producer IN ({marks}) GROUP BY outcome",
            names,
        ).fetchall()
    readings: Stored = Counter(
        {(str(producer), str(device)): int(count) for producer, device, count in rows}
    )
    return {
        "readings": readings,
        "messages": {str(outcome): int(count) for outcome, count in outcomes},
    }
