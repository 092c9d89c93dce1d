"""Simulated Light Nodes (D3.2): each with its own key, registered by the DSO, sending
signed envelopes (ARCHITECTURE §8) of PMU readings with its own MQTT login, and
answering the set points it gets on setpoints/NAME/DEVICE ("applied", signed).

The keys live in a local keystore file (JSON, mode 0600) next to each device's MQTT
password, so a second run reuses the same devices instead of registering new ones:
the file holds private keys, keep it like one. Registration goes through the BAL's API
with an administrator's (the DSO's) token: the device for its producer, then its key
in DeviceRegistry.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.readings import format_time
from platone_bal.domain.setpoints import setpoint_topic
from platone_bal.simulate import connect, pmu_payload, signed_envelope


@dataclass(frozen=True)
class LightNode:
    device: str
    account: LocalAccount
    mqtt_password: str


def load_keystore(path: Path) -> dict[str, dict[str, str]]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def save_keystore(path: Path, entries: dict[str, dict[str, str]]) -> None:
    """Written whole to a temporary file (mode 0600), then moved over the old one."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(entries, file, indent=2)
    os.replace(temporary, path)


class Registrar:
    """The DSO's side: registers devices and their keys through the API."""

    def __init__(self, api: str, admin: str, password: str, producer: str) -> None:
        self.http = httpx.Client(base_url=api, timeout=60)
        self.producer = producer
        answer = self.http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": admin, "password": password},
        )
        if answer.status_code != 200:
            raise PermissionError(f"{admin} cannot sign in at {api}: {answer.text}")
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def register(self, device: str, account: LocalAccount) -> str:
        """The device (with its own MQTT login) and its key; returns its MQTT password."""
        created = self.http.post(
            "/v1/devices",
            json={
                "device_id": device,
                "kind": "light-node",
                "public_key": account.address,
                "mqtt_credentials": True,
                "producer": self.producer,
            },
        )
        if created.status_code != 201:
            raise RuntimeError(f"registering {device}: {created.status_code} {created.text}")
        key = self.http.post(f"/v1/devices/{device}/key", params={"producer": self.producer})
        if key.status_code != 200:
            raise RuntimeError(f"registering the key of {device}: {key.status_code} {key.text}")
        return str(created.json()["mqtt_password"])


def light_nodes(
    count: int, keystore: Path, producer: str, registrar: Registrar | None
) -> list[LightNode]:
    """`count` Light Nodes ln001...: from the keystore, or made and registered now."""
    entries = load_keystore(keystore)
    nodes = []
    for number in range(1, count + 1):
        device = f"ln{number:03d}"
        entry = entries.get(f"{producer}/{device}")
        if entry is None:
            if registrar is None:
                raise RuntimeError(f"{device} is not in {keystore}: give an admin password")
            account = Account.create()
            password = registrar.register(device, account)
            entry = {"key": account.key.hex(), "address": account.address, "mqtt": password}
            entries[f"{producer}/{device}"] = entry
            save_keystore(keystore, entries)
        nodes.append(LightNode(device, Account.from_key(entry["key"]), entry["mqtt"]))
    return nodes


class SetPointAnswers:
    """Each node "applies" every set point it gets on setpoints/NAME/DEVICE and answers
    with a signed envelope on platone/NAME/DEVICE/ack naming the set point's leaf hash;
    a repeat (at-least-once delivery) is answered once."""

    def __init__(self, producer: str) -> None:
        self.producer = producer
        self.answered: set[int] = set()
        self._lock = threading.Lock()

    def attach(self, node: LightNode, client: mqtt.Client) -> None:
        def on_message(_client: mqtt.Client, _data: object, message: mqtt.MQTTMessage) -> None:
            self._answer(node, client, bytes(message.payload))

        client.on_message = on_message
        client.subscribe(setpoint_topic(self.producer, node.device), qos=1)

    def _answer(self, node: LightNode, client: mqtt.Client, payload: bytes) -> None:
        try:
            message = json.loads(payload)
            index, leaf = int(message["index"]), message["leaf"]
        except (ValueError, KeyError, TypeError):
            return  # not a set point: nothing to apply
        with self._lock:
            if index in self.answered:
                return
            self.answered.add(index)
        answer = {
            "setpoint": index,
            "leaf_hash": "0x" + SHA3_256.hash_leaf(leaf_bytes(leaf)).hex(),
            "status": "applied",
            "time": format_time(datetime.now(UTC)),
        }
        envelope = signed_envelope(json.dumps(answer).encode(), node.device, node.account)
        client.publish(f"platone/{self.producer}/{node.device}/ack", envelope, qos=1)


def run_light_nodes(
    nodes: list[LightNode],
    *,
    producer: str,
    url: str,
    interval: float,
    rounds: int,
    ca_file: Path | None = None,
) -> int:
    """Each round, every node publishes one signed envelope of its PMU readings with its
    own login, and answers the set points it gets meanwhile; returns the envelopes of
    readings the broker acknowledged."""
    clients = [
        connect(url, f"{producer}/{node.device}", node.mqtt_password, ca_file=ca_file)
        for node in nodes
    ]
    answers = SetPointAnswers(producer)
    for node, client in zip(nodes, clients, strict=True):
        answers.attach(node, client)
    sent, done = 0, 0
    try:
        while rounds == 0 or done < rounds:
            started = time.monotonic()
            moment = datetime.now(UTC)
            infos = []
            for node, client in zip(nodes, clients, strict=True):
                payload = pmu_payload(node.device, moment, (moment.timestamp() * 3.0) % 360)
                envelope = signed_envelope(payload, node.device, node.account)
                infos.append(client.publish(f"platone/{producer}/{node.device}", envelope, qos=1))
            for info in infos:
                with contextlib.suppress(RuntimeError, ValueError):  # connection lost
                    info.wait_for_publish(timeout=30)
            sent += sum(info.is_published() for info in infos)
            done += 1
            if rounds == 0 or done < rounds:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
    return sent
