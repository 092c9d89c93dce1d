"""A device with its own MQTT login on the node's own Mosquitto: confined to its topic and
its own readings; disabled, it cannot log in."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from platone_bal.adapters.web3_chain import contract
from platone_bal.domain.devices import device_key
from platone_bal.simulate import connect
from tests.conftest import SAMPLE_PMU
from tests.integration.nodes import NodeThread, wait_for


def test_device_login_is_confined_to_its_own_topic_and_readings(tmp_path: Path) -> None:
    with NodeThread(tmp_path / "bal") as node:
        node.add_user("producer1", "secret-pass-1")
        producer = node.token("producer1", "secret-pass-1")
        device = node.http.post(
            "/v1/devices",
            json={"device_id": "pmu1", "kind": "pmu", "mqtt_credentials": True},
            headers=producer,
        ).json()
        url = f"mqtt://127.0.0.1:{node.settings.mqtt_port}"
        client = connect(url, device["mqtt_username"], device["mqtt_password"])
        client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
        # Outside its topic: Mosquitto's ACL drops the publish (MQTT 3.1.1 cannot say so)
        other_topic = SAMPLE_PMU.replace(b"11", b"15", 1)
        client.publish("platone/producer1/pmu2", other_topic, qos=1).wait_for_publish(5)
        foreign = SAMPLE_PMU.replace(b'"pmu1"', b'"pmu9"')
        client.publish("platone/producer1/pmu1", foreign, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        # The producer itself may not put other devices' readings on the device's topic
        owner = connect(url, "producer1", "secret-pass-1")
        also_foreign = foreign.replace(b"11", b"12", 1)
        owner.publish("platone/producer1/pmu1", also_foreign, qos=1).wait_for_publish(5)
        owner.disconnect()
        owner.loop_stop()

        def rejections() -> list[str]:
            answer = node.http.get("/v1/rejections", headers=producer).json()
            return [item["reason"] for item in answer["items"]]

        wait_for(lambda: len(rejections()) == 4, what="2 rejected payloads (4 rows)")
        readings = node.http.get("/v1/readings", headers=producer).json()["items"]
        assert [(r["device"], r["value"]) for r in readings] == [("pmu1", "11"), ("pmu1", "22")]
        reasons = rejections()
        assert all("device 'pmu1' may send only its own readings" in r for r in reasons)

        node.http.post("/v1/devices/pmu1/disable", headers=producer).raise_for_status()
        with pytest.raises(ConnectionError):
            connect(url, device["mqtt_username"], device["mqtt_password"])
        with pytest.raises(ConnectionError):
            connect(url, "producer1/pmu1", "wrong-password")


def test_admin_puts_device_keys_in_the_device_registry(tmp_path: Path) -> None:
    device_account = Account.create()
    with NodeThread(tmp_path / "bal") as node:
        owner = node.add_user("producer1", "secret-pass-1")
        producer = node.token("producer1", "secret-pass-1")
        node.http.post(
            "/v1/devices",
            json={"device_id": "meter7", "kind": "meter", "public_key": device_account.address},
            headers=producer,
        ).raise_for_status()
        path, params = "/v1/devices/meter7/key", {"producer": "producer1"}
        assert node.http.post(path, params=params, headers=producer).status_code == 403
        registered = node.http.post(path, params=params, headers=node.token())
        assert registered.status_code == 200, registered.text
        tx = registered.json()["chain_tx"]

        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.settings.chain_rpc_port}"))
        deployment = node.node.chain.chain.deployment if node.node.chain else None
        assert deployment is not None
        registry = contract(w3, "DeviceRegistry", deployment.contracts["DeviceRegistry"])
        key = device_key("producer1", "meter7")
        assert registry.functions.isActiveKey(key, device_account.address).call()
        (event,) = registry.events.DeviceRegistered().process_receipt(
            w3.eth.get_transaction_receipt(tx)
        )
        assert event["args"]["owner"] == owner["wallet"]
        again = node.http.post(path, params=params, headers=node.token())
        assert again.status_code == 409 and "AlreadyRegistered" in again.json()["detail"]

        revoked = node.http.delete(path, params=params, headers=node.token())
        assert revoked.status_code == 200
        assert not registry.functions.isActiveKey(key, device_account.address).call()
