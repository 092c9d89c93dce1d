"""Signed Light Node envelopes on a running node: a device's key registered in
DeviceRegistry through the API (embedded chain) or by another tool straight on an
outside JSON-RPC node (ganache); envelopes published with the device's own MQTT login
and posted over HTTPS; a revocation honoured within 5 s."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner, Result
from web3 import Web3

from platone_bal.adapters.web3_chain import Transactor, contract
from platone_bal.cli import app
from platone_bal.codecs import decode
from platone_bal.domain.devices import device_key
from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.merkle import SHA3_256
from platone_bal.simulate import connect, pmu_payload, signed_envelope
from tests.conftest import SAMPLE_PMU
from tests.integration.ganache import PASSPHRASE, Ganache, node_key_files
from tests.integration.nodes import ADMIN_PASSWORD, NodeThread, wait_for
from tests.integration.stores import store_env

pytestmark = pytest.mark.integration
HONOURED_WITHIN = 5.0
"""ARCHITECTURE §8: a key registered or revoked on chain counts within 5 s."""


def envelope(payload: bytes, account: LocalAccount, device: str = "ln1") -> bytes:
    return signed_envelope(payload, device, account)


def packet(value: int, device: str = "ln1") -> bytes:
    """A PMU payload of `device` with a value of its own (each a new message)."""
    return SAMPLE_PMU.replace(b'"pmu1"', f'"{device}"'.encode()).replace(
        b"11", str(value).encode(), 1
    )


class Producer:
    """producer1 on a node, with its Light Node ln1 (own MQTT login, key `account`)."""

    def __init__(self, node: NodeThread, account: LocalAccount) -> None:
        self.node = node
        node.add_user("producer1", "secret-pass-1")
        self.headers = node.token("producer1", "secret-pass-1")
        device = node.http.post(
            "/v1/devices",
            json={
                "device_id": "ln1",
                "kind": "light-node",
                "public_key": account.address,
                "mqtt_credentials": True,
            },
            headers=self.headers,
        )
        device.raise_for_status()
        url = f"mqtt://127.0.0.1:{node.settings.mqtt_port}"
        self.device_login = device.json()["mqtt_username"]
        self.device_password = device.json()["mqtt_password"]
        self.device = connect(url, self.device_login, self.device_password)

    def publish(self, payload: bytes) -> None:
        self.device.publish("platone/producer1/ln1", payload, qos=1).wait_for_publish(5)

    def readings(self) -> list[dict[str, object]]:
        answer = self.node.http.get("/v1/readings", params={"limit": 1000}, headers=self.headers)
        return list(answer.json()["items"])

    def rejections(self) -> list[str]:
        answer = self.node.http.get("/v1/rejections", params={"limit": 1000}, headers=self.headers)
        return [item["reason"] for item in answer.json()["items"]]

    def close(self) -> None:
        self.device.disconnect()
        self.device.loop_stop()


def signer_of(reading: dict[str, object]) -> object:
    attrs = reading["attrs"]
    assert isinstance(attrs, dict)
    return attrs.get("signer")


def signed_proof(node: NodeThread, reading_id: object, directory: Path) -> Path:
    """The reading's proof bundle once anchored, in a file."""
    bundle: dict[str, object] = {}

    def anchored() -> bool:
        bundle.update(
            node.http.get(f"/v1/readings/{reading_id}/proof", headers=node.token()).json()
        )
        return bundle.get("anchor") is not None

    wait_for(anchored, timeout=30, what="the signed reading anchored")
    path = directory / f"proof-{reading_id}.json"
    path.write_text(json.dumps(bundle))
    return path


def verify(node: NodeThread, proof: Path, registry: str | None = None) -> Result:
    assert node.node.chain is not None
    address = registry or node.node.chain.chain.deployment.contracts["DeviceRegistry"]
    rpc = f"http://127.0.0.1:{node.settings.chain_rpc_port}"
    return CliRunner().invoke(
        app, ["verify", str(proof), "--rpc", rpc, "--device-registry", address]
    )


def test_signed_envelopes_over_mqtt_and_https_a_rotation_and_a_revocation_within_5_s(
    tmp_path: Path,
) -> None:
    light_node = Account.create()
    with NodeThread(tmp_path / "bal", anchor_interval=0.5) as node:
        producer = Producer(node, light_node)
        try:
            path, params = "/v1/devices/ln1/key", {"producer": "producer1"}
            node.http.post(path, params=params, headers=node.token()).raise_for_status()
            time.sleep(HONOURED_WITHIN)  # the registration counts within 5 s
            producer.publish(envelope(packet(1), light_node))
            posted = node.http.post(
                "/v1/ingest", content=envelope(packet(2), light_node), headers=producer.headers
            )
            assert posted.status_code == 202, posted.text
            producer.publish(packet(3))  # unsigned, from a device with a key
            producer.publish(envelope(packet(4), Account.create()))  # another key
            wait_for(lambda: len(producer.readings()) == 4, what="4 signed readings")
            wait_for(
                lambda: (
                    any(
                        "another key" in r or "registered with key" in r
                        for r in producer.rejections()
                    )
                    and any("must send signed" in r for r in producer.rejections())
                ),
                what="the unsigned and the wrongly signed packets refused",
            )
            readings = producer.readings()
            assert {r["value"] for r in readings} == {"1", "2", "22"}
            assert {signer_of(r) for r in readings} == {light_node.address}
            reasons = producer.rejections()
            assert any("must send signed envelopes" in r for r in reasons), reasons
            assert any(f"registered with key {light_node.address}" in r for r in reasons), reasons

            proof = signed_proof(node, readings[0]["id"], tmp_path)
            verified = verify(node, proof)
            assert verified.exit_code == 0, verified.output
            said = " ".join(verified.output.split())  # rich wraps long lines
            expected = f"PASS signer signed by {light_node.address}, the key DeviceRegistry held"
            assert f"{expected} for producer1/ln1 at block" in said, said
            assert "PASS anchor" in said
            offline = CliRunner().invoke(app, ["verify", str(proof)])  # no chain: signer shown
            assert offline.exit_code == 0, offline.output
            said = " ".join(offline.output.split())
            assert f"SKIP signer signed by {light_node.address} at device producer1/ln1" in said

            # the DSO rotates the key: packets under the new key count, the old key's not
            rotated_to = Account.create()
            rotated = node.http.post(
                path, params=params, json={"public_key": rotated_to.address}, headers=node.token()
            )
            assert rotated.status_code == 200, rotated.text
            assert rotated.json()["public_key"] == rotated_to.address
            producer.publish(envelope(packet(5), rotated_to))
            producer.publish(envelope(packet(6), light_node))
            wait_for(lambda: len(producer.readings()) == 6, what="the new key's packet")
            wait_for(
                lambda: (
                    sum(
                        f"registered with key {rotated_to.address}" in r
                        for r in producer.rejections()
                    )
                    == 1
                )
            )
            light_node = rotated_to

            node.http.delete(path, params=params, headers=node.token()).raise_for_status()
            revoked_at = time.monotonic()
            sent = 10
            while True:  # a packet a 0.2 s until one is refused
                sent += 1
                producer.publish(envelope(packet(sent), light_node))
                time.sleep(0.2)
                if any("was revoked" in r for r in producer.rejections()):
                    break
                assert time.monotonic() - revoked_at < HONOURED_WITHIN + 2, "revocation ignored"
            refused_after = time.monotonic() - revoked_at
            count = len(producer.readings())
            producer.publish(envelope(packet(99), light_node))
            wait_for(lambda: sum("was revoked" in r for r in producer.rejections()) >= 2)
            assert len(producer.readings()) == count  # nothing more accepted after that
            assert refused_after < HONOURED_WITHIN + 0.5, refused_after
            # the proof still holds: the registry held that key when it was anchored
            assert verify(node, proof).exit_code == 0
            assert node.node.chain is not None
            other = node.node.chain.chain.deployment.contracts["CertificationRegistry"]
            wrong = verify(node, proof, registry=other)
            assert wrong.exit_code == 1 and "FAIL signer" in wrong.output, wrong.output
        finally:
            producer.close()


def test_keys_changed_on_an_outside_node_by_another_tool_and_by_the_node_count_within_5_s(
    ganache_setup: tuple[Ganache, Path],
) -> None:
    ganache, data_dir = ganache_setup
    env = {"BAL_DATA_DIR": str(data_dir), "BAL_KEY_PASSPHRASE": PASSPHRASE, **store_env(data_dir)}
    deployed = CliRunner().invoke(app, ["chain", "deploy", "--rpc", ganache.url], env=env)
    assert deployed.exit_code == 0, deployed.output
    settings = {"chain": "rpc", "chain_url": ganache.url, "key_passphrase": PASSPHRASE}
    light_node = Account.create()
    with NodeThread(data_dir, **settings) as node:  # type: ignore[arg-type]
        producer = Producer(node, light_node)
        try:
            # the DSO registers the key with its own tooling, not through the BAL
            w3 = Web3(Web3.HTTPProvider(ganache.url))
            assert node.node.chain is not None
            address = node.node.chain.chain.deployment.contracts["DeviceRegistry"]
            registry = contract(w3, "DeviceRegistry", address)
            admin_key = node_key_files(data_dir)["chain-admin"]
            dso = Transactor(w3, admin_key)
            owner = Account.create().address
            dso.send(
                registry.functions.register(
                    device_key("producer1", "ln1"), light_node.address, owner
                )
            )
            registered_at = time.monotonic()
            value = 0
            while not producer.readings():
                value += 1
                producer.publish(envelope(packet(value), light_node))
                time.sleep(0.2)
                assert time.monotonic() - registered_at < HONOURED_WITHIN + 2, producer.rejections()
            assert time.monotonic() - registered_at < HONOURED_WITHIN + 0.5
            reading = producer.readings()[0]
            assert signer_of(reading) == light_node.address

            # the node's API rotates the key on the outside node (revoke, then register)
            rotated_to = Account.create()
            rotated = node.http.post(
                "/v1/devices/ln1/key",
                params={"producer": "producer1"},
                json={"public_key": rotated_to.address},
                headers=node.token(),
            )
            assert rotated.status_code == 200, rotated.text
            assert registry.functions.isActiveKey(
                device_key("producer1", "ln1"), rotated_to.address
            ).call()
            before = len(producer.readings())
            producer.publish(envelope(packet(500), rotated_to))
            wait_for(lambda: len(producer.readings()) > before, what="the rotated key's packet")
            light_node = rotated_to

            dso.send(registry.functions.revoke(device_key("producer1", "ln1")))
            revoked_at = time.monotonic()
            while not any("was revoked" in r for r in producer.rejections()):
                value += 1
                producer.publish(envelope(packet(value), light_node))
                time.sleep(0.2)
                assert time.monotonic() - revoked_at < HONOURED_WITHIN + 2, "revocation ignored"
            assert time.monotonic() - revoked_at < HONOURED_WITHIN + 0.5
        finally:
            producer.close()


def test_bal_simulate_light_nodes_registers_keys_and_sends_signed_envelopes(
    tmp_path: Path,
) -> None:
    keystore = tmp_path / "light-nodes.json"
    with NodeThread(tmp_path / "bal") as node:
        node.add_user("producer1", "secret-pass-1")
        common = [
            "simulate", "--light-nodes", "3", "--rounds", "2", "--interval", "0",
            "--url", f"mqtt://127.0.0.1:{node.settings.mqtt_port}",
            "--api", f"http://127.0.0.1:{node.settings.http_port}",
            "--keystore", str(keystore),
        ]  # fmt: skip
        first = CliRunner().invoke(app, [*common, "--admin-password", ADMIN_PASSWORD])
        assert first.exit_code == 0, first.output
        assert "sent 6 signed envelopes" in first.output
        assert keystore.stat().st_mode & 0o777 == 0o600
        stored = json.loads(keystore.read_text())
        assert sorted(stored) == ["producer1/ln001", "producer1/ln002", "producer1/ln003"]

        def signed() -> dict[str, set[object]]:
            items = node.get("/v1/readings", limit=1000)["items"]  # type: ignore[index]
            by_device: dict[str, set[object]] = {}
            for item in items:
                by_device.setdefault(item["device"], set()).add(item["attrs"].get("signer"))
            return by_device

        per_envelope = len(decode(pmu_payload("ln001", datetime.now(UTC), 0.0)).readings)

        def readings() -> int:
            return len(node.get("/v1/readings", limit=1000)["items"])  # type: ignore[arg-type]

        wait_for(lambda: readings() == 6 * per_envelope, what="6 envelopes' readings")
        assert signed() == {
            f"ln00{n}": {stored[f"producer1/ln00{n}"]["address"]} for n in (1, 2, 3)
        }
        # a second run reuses the keystore: no registration, no admin password needed
        node.http.delete(
            "/v1/devices/ln002/key", params={"producer": "producer1"}, headers=node.token()
        ).raise_for_status()
        again = CliRunner().invoke(app, common)
        assert again.exit_code == 0 and "sent 6 signed envelopes" in again.output, again.output
        wait_for(lambda: readings() == 10 * per_envelope, what="4 more envelopes' readings")
        reasons = [r["reason"] for r in node.get("/v1/rejections")["items"]]  # type: ignore[index]
        assert len(reasons) == 2 and all("ln002" in r and "was revoked" in r for r in reasons)

        # while the simulator runs, the DSO sends ln001 a set point: applied, signed
        running = threading.Thread(
            target=CliRunner().invoke,
            args=(app, [*common[:4], "20", "--interval", "0.5", *common[7:]]),
        )
        running.start()
        time.sleep(1.0)
        body = setpoint_body("1.5") | {"device": "ln001"}
        issued = node.http.post("/v1/setpoints", json=body, headers=node.token()).json()
        wait_for(
            lambda: node.get(f"/v1/setpoints/{issued['id']}")["status"] == "applied",
            timeout=15,
            what="the simulated Light Node's answer",
        )
        answer = node.get(f"/v1/setpoints/{issued['id']}")["answer"]
        assert answer["signer"] == stored["producer1/ln001"]["address"]  # type: ignore[index]
        running.join(30)


def setpoint_body(value: str) -> dict[str, object]:
    start = datetime.now(UTC)
    return {
        "producer": "producer1", "device": "ln1", "measurand": "activePowerLimit",
        "value": value, "unit": "kW", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }  # fmt: skip


def anchored_proof(node: NodeThread, path: str, file: Path) -> Path:
    bundle: dict[str, object] = {}

    def anchored() -> bool:
        bundle.update(node.http.get(path, headers=node.token()).json())
        return bundle.get("anchor") is not None

    wait_for(anchored, timeout=30, what=f"{path} anchored")
    file.write_text(json.dumps(bundle))
    return file


def test_a_set_point_round_trip_across_a_node_restart(tmp_path: Path) -> None:
    """The Light Node keeps a persistent session on setpoints/NAME/DEVICE and goes
    offline; the DSO issues a set point, which is delivered to the broker; the node (and
    its Mosquitto) restart; the Light Node comes back, gets the set point, answers with a
    signed envelope, and both leaves' proofs verify."""
    light_node = Account.create()
    data = tmp_path / "bal"
    with NodeThread(data, anchor_interval=0.5) as node:
        producer = Producer(node, light_node)
        producer.close()
        credentials = (producer.device_login, producer.device_password)
        node.http.post(
            "/v1/devices/ln1/key", params={"producer": "producer1"}, headers=node.token()
        ).raise_for_status()
        session = connect(
            f"mqtt://127.0.0.1:{node.settings.mqtt_port}", *credentials,
            client_id="producer1/ln1", clean_session=False,
        )  # fmt: skip
        subscribed = session.subscribe("setpoints/producer1/ln1", qos=1)
        assert subscribed[0] == 0
        time.sleep(0.5)
        session.disconnect()
        session.loop_stop()
        issued = node.http.post("/v1/setpoints", json=setpoint_body("3.5"), headers=node.token())
        assert issued.status_code == 201, issued.text
        setpoint = issued.json()
        wait_for(
            lambda: node.get(f"/v1/setpoints/{setpoint['id']}")["status"] == "delivered",
            what="delivered to the broker (queued for the offline session)",
        )

    with NodeThread(data, anchor_interval=0.5) as node:
        received: list[bytes] = []
        device = mqtt_session(node, credentials, received)
        wait_for(lambda: len(received) == 1, what="the set point after the restart")
        message = json.loads(received[0])
        assert (message["log"], message["index"]) == ("bal-setpoints", setpoint["index"])
        leaf = message["leaf"]
        assert (leaf["kind"], leaf["value"], leaf["device"]) == ("setpoint", "3.5", "ln1")
        leaf_hash = "0x" + SHA3_256.hash_leaf(leaf_bytes(leaf)).hex()
        body = {"setpoint": message["index"], "leaf_hash": leaf_hash, "status": "applied",
                "time": datetime.now(UTC).isoformat()}  # fmt: skip
        ack = signed_envelope(json.dumps(body).encode(), "ln1", light_node)
        device.publish("platone/producer1/ln1/ack", ack, qos=1).wait_for_publish(5)
        wait_for(
            lambda: node.get(f"/v1/setpoints/{setpoint['id']}")["status"] == "applied",
            what="the answer logged",
        )
        answered = node.get(f"/v1/setpoints/{setpoint['id']}")
        assert answered["answer"]["signer"] == light_node.address  # type: ignore[index]
        rpc = f"http://127.0.0.1:{node.settings.chain_rpc_port}"
        for query, name in (("", "setpoint"), ("?answer=true", "answer")):
            path = f"/v1/setpoints/{setpoint['id']}/proof{query}"
            proof = anchored_proof(node, path, tmp_path / f"{name}.json")
            assert json.loads(proof.read_text())["leaf"]["kind"] == name
            checked = CliRunner().invoke(app, ["verify", str(proof), "--rpc", rpc])
            assert checked.exit_code == 0, checked.output
        device.disconnect()
        device.loop_stop()


def mqtt_session(node: NodeThread, credentials: tuple[str, str], into: list[bytes]) -> Any:
    """The Light Node's persistent session again: what was queued arrives (the handler is
    set before connecting: queued messages come at once)."""
    device = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="producer1/ln1", clean_session=False
    )
    device.username_pw_set(*credentials)
    device.on_message = lambda _c, _u, message: into.append(message.payload)
    device.connect("127.0.0.1", node.settings.mqtt_port)
    device.loop_start()
    return device
