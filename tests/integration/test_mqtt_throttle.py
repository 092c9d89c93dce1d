"""Password guessing over MQTT meets growing lockouts on the node's own Mosquitto (the
bal_throttle plugin), as over HTTP: before it, one source tried 10 logins/s without
ever being slowed. Successful logins never count, so a device that connects for each
message is never throttled."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.nodes import NodeThread

PASSWORD = "right-pass-1"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeThread]:
    with NodeThread(tmp_path / "bal") as running:
        running.add_user("guessed", PASSWORD)
        running.add_user("bystander", PASSWORD)
        yield running


def logs_in(node: NodeThread, username: str, password: str) -> bool:
    """Exactly one MQTT 3.1.1 CONNECT (a client library would retry on its own): True
    when the CONNACK accepts it."""

    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("!H", len(raw)) + raw

    body = text("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    body += text("") + text(username) + text(password)
    with socket.create_connection(("127.0.0.1", node.settings.mqtt_port), timeout=5) as conn:
        conn.sendall(bytes([0x10, len(body)]) + body)
        connack = conn.recv(4)
        if len(connack) == 4 and connack[3] == 0:
            conn.sendall(bytes([0xE0, 0]))  # DISCONNECT
            return True
        return False


def test_failed_logins_lock_the_account_out_for_growing_times(node: NodeThread) -> None:
    assert logs_in(node, "guessed", PASSWORD)  # add_user answered once the broker had it
    for _ in range(50):  # a connection per message: successes never count
        assert logs_in(node, "guessed", PASSWORD)
    for _ in range(5):  # the free failures
        assert not logs_in(node, "guessed", "wrong-guess")
    # locked now for 1 s: even the right password is refused, unchecked, and that
    # attempt counts too, doubling the lockout to 2 s from now
    assert not logs_in(node, "guessed", PASSWORD)
    assert logs_in(node, "bystander", PASSWORD)  # another account from the same address
    time.sleep(1.2)
    assert not logs_in(node, "guessed", PASSWORD)  # still locked: now 4 s
    time.sleep(4.2)
    assert logs_in(node, "guessed", PASSWORD)  # over; the success clears its failures
    for _ in range(4):
        assert not logs_in(node, "guessed", "wrong-again")
    assert logs_in(node, "guessed", PASSWORD)  # the success above cleared the count


def test_an_address_spraying_many_accounts_is_locked_out(node: NodeThread) -> None:
    for number in range(20):  # 20 free failures per address, across usernames
        assert not logs_in(node, f"sprayed{number}", "guess")
    assert not logs_in(node, "bystander", PASSWORD)  # the address is locked now (2 s)
    time.sleep(2.2)
    assert logs_in(node, "bystander", PASSWORD)
    # the node's own service account is never throttled: ingest goes on
    node.add_user("producer9", PASSWORD, role="producer")
    assert logs_in(node, "producer9", PASSWORD)
