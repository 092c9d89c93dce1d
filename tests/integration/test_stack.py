"""`bal stack up` / `down` (make stack): the production topology on this machine, as a
new user runs it: PostgreSQL, Mosquitto with TLS and Dynamic Security, ganache and two
BAL nodes behind one HTTP port. Readings sent by `bal simulate` over mqtts:// are
served through the one port, also after the leader was killed; a stack brought down
and up again keeps its data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, require_binary
from tests.integration.bal_process import wait_until
from tests.integration.ganache import GANACHE

ROOT = Path(__file__).resolve().parents[2]
BAL = Path(sys.executable).parent / "bal"
PRODUCER_PASSWORD = "producer-pass-1"


def bal(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAL_")}
    return subprocess.run(
        [str(BAL), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


class Front:
    """The stack's one HTTP port, as the admin."""

    def __init__(self, directory: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        password = (directory / "secrets" / "admin-password").read_text().strip()
        answer = httpx.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "password", "username": "admin", "password": password},
            timeout=20,
        )
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def readings(self) -> int:
        total, cursor = 0, None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = httpx.get(
                f"{self.base}/v1/readings", params=params, headers=self.headers, timeout=20
            )
            page.raise_for_status()
            body = page.json()
            total += len(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                return total


def settled(front: Front, quiet: float = 3.0, timeout: float = 90.0) -> int:
    """The number of readings once it stopped changing for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    count, since = front.readings(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"readings still changing: {count}"
        time.sleep(0.5)
        now = front.readings()
        if now != count:
            count, since = now, time.monotonic()
    return count


@pytest.mark.timeout(600)
def test_make_stack_runs_the_topology_survives_a_dead_leader_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    require_binary("mosquitto")
    assert GANACHE.exists(), "node_modules/.bin/ganache is required; run `npm ci`"
    directory = tmp_path / "stack"
    http_port, mqtt_port = free_port(), free_port()
    ports = ["--http-port", str(http_port), "--mqtt-port", str(mqtt_port)]
    up = bal("stack", "up", "--dir", str(directory), "--nodes", "2", *ports)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{http_port}" in up.stdout
        front = Front(directory, http_port)
        created = httpx.post(
            f"{front.base}/v1/users",
            json={"username": "producer1", "password": PRODUCER_PASSWORD, "role": "producer"},
            headers=front.headers,
            timeout=20,
        )
        assert created.status_code == 201, created.text
        ca = directory / "mosquitto" / "tls" / "cert.pem"
        simulate = [
            "simulate", "--url", f"mqtts://127.0.0.1:{mqtt_port}", "--ca-file", str(ca),
            "--username", "producer1", "--password", PRODUCER_PASSWORD,
            "--meters", "2", "--pmus", "2", "--rounds", "10", "--interval", "0.05",
        ]  # fmt: skip
        sent = bal(*simulate)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "sent 40 payloads" in sent.stdout, sent.stdout
        first = settled(front)
        assert first >= 40

        # kill -9 the leader: the front keeps answering, another node takes over
        state = json.loads((directory / "stack.json").read_text())
        leader = next(
            name
            for name, port in zip(("node1", "node2"), state["node_ports"], strict=True)
            if "bal_leader 1.0" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        )
        os.kill(state["pids"][leader], signal.SIGKILL)
        assert front.readings() == first
        sent = bal(*simulate)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        # the living node takes its share; the dead node's share waits in its session
        wait_until(lambda: front.readings() > first, 60, "readings after the kill")

        down = bal("stack", "down", "--dir", str(directory))
        assert down.returncode == 0, down.stdout + down.stderr
        assert not any(alive(pid) for pid in state["pids"].values())
        again = bal("stack", "up", "--dir", str(directory), "--nodes", "2", *ports)
        assert again.returncode == 0, again.stdout + again.stderr
        # the data kept, and the killed node's share delivered to it under its name (it
        # may come seconds after the other node's: the nodes start one after the other)
        again_front = Front(directory, http_port)
        wait_until(lambda: again_front.readings() >= 2 * first, 90, "every reading stored")
        assert settled(again_front) == 2 * first  # and none twice
    finally:
        if (directory / "stack.json").exists():
            removed = bal("stack", "down", "--dir", str(directory), "--remove")
            assert removed.returncode == 0, removed.stdout + removed.stderr
        assert not directory.exists()
