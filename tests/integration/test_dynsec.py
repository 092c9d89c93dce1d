"""Grants enforced by a real Mosquitto 2.0 through its Dynamic Security plugin.

The BAL keeps the plugin's clients and roles equal to its users, devices and grants:
a consumer receives a producer's certified readings only while a grant holds, within
its devices; a revoke disconnects that consumer alone; drift made behind the BAL's
back is repaired at start-up and while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from platone_bal.adapters.dynsec import DynsecControl, DynsecState
from platone_bal.simulate import connect
from tests.conftest import SAMPLE_XML
from tests.integration.mosquitto import Mosquitto
from tests.integration.nodes import NodeThread, wait_for
from tests.integration.subscribers import Subscriber

SERVICE = ("bal-service", "service-pass-1")
PRODUCER = ("producer1", "secret-pass-1")
CONSUMER = ("consumer1", "secret-pass-2")
OTHER = ("consumer2", "secret-pass-3")
INTRUDER = ("intruder", "intruder-pass-1")


def pmu(device: str, second: int, value: int) -> bytes:
    """A PMU payload like the field trials' sample, unique per (device, second)."""
    time = datetime(2026, 11, 22, 10, 0, second, tzinfo=UTC).isoformat()
    reading = {"component": "BUS1", "measurand": "voltmagnitude", "phase": "A", "data": value}
    return json.dumps({"device": device, "timestamp": time, "readings": [reading]}).encode()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    # producer1 and an intruder start with an open role: drift the BAL must repair.
    users = dict([SERVICE, PRODUCER, INTRUDER])
    broker = Mosquitto(tmp_path / "mosquitto", users).start()
    yield broker
    broker.cleanup()


def control(broker: Mosquitto) -> DynsecControl:
    """A second connection of the service account, to look at or tamper with the plugin."""
    dynsec = DynsecControl(broker.url, *SERVICE, client_id="test-dynsec")
    dynsec.start()
    return dynsec


def state(dynsec: DynsecControl) -> DynsecState:
    return DynsecState.from_responses(
        dynsec.request(
            [{"command": "listClients", "verbose": True}, {"command": "listRoles", "verbose": True}]
        )
    )


def refused(broker: Mosquitto, username: str, password: str) -> bool:
    try:
        connect(broker.url, username, password).disconnect()
    except ConnectionError:
        return True
    return False


def readable(node: NodeThread, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = node.http.get("/v1/readings", params={"limit": 1000}, headers=headers)
    answer.raise_for_status()
    return list(answer.json()["items"])


def post(node: NodeThread, path: str, headers: dict[str, str], **body: Any) -> Any:
    answer: httpx.Response = node.http.post(path, json=body or None, headers=headers)
    answer.raise_for_status()
    return answer.json()


def test_a_grant_opens_and_a_revoke_closes_both_channels(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with mosquitto.bal_node(tmp_path / "bal") as node:
        producer_user = node.add_user(*PRODUCER)
        node.add_user(*CONSUMER, role="consumer")
        node.add_user(*OTHER, role="consumer")
        producer, consumer, other = (node.token(*who) for who in (PRODUCER, CONSUMER, OTHER))
        device = connect(mosquitto.url, *PRODUCER)

        def publish(payload: bytes, topic: str = "platone/producer1") -> None:
            device.publish(topic, payload, qos=1).wait_for_publish(5)

        owner = Subscriber(mosquitto.url, *PRODUCER, "certified/producer1/#")
        publish(SAMPLE_XML)
        wait_for(lambda: len(owner.received()) == 2, timeout=15, what="2 certified readings")
        owner.close()

        # Before any grant: nothing over REST, no subscription.
        assert readable(node, consumer) == []
        refused_sub = Subscriber(mosquitto.url, *CONSUMER, "certified/producer1/#")
        assert refused_sub.codes[0].is_failure
        refused_sub.close()

        # consumer1 asks for everything, consumer2 gets only pmu1.
        whole = post(node, "/v1/grants", consumer, producer="producer1")
        post(node, f"/v1/grants/{whole['id']}/accept", producer)
        narrow = post(node, "/v1/grants", other, producer="producer1")
        post(node, f"/v1/grants/{narrow['id']}/accept", producer, devices=["pmu1"])
        assert len(readable(node, consumer)) == 2  # the meter's two readings
        assert readable(node, other) == []

        mine = Subscriber(mosquitto.url, *CONSUMER, f"granted/{whole['id']}/#")
        theirs = Subscriber(mosquitto.url, *OTHER, f"granted/{narrow['id']}/#")
        assert not mine.codes[0].is_failure and not theirs.codes[0].is_failure
        publish(pmu("pmu1", 1, 11), "platone/producer1/pmu1")
        publish(pmu("pmu2", 1, 21), "platone/producer1/pmu2")
        wait_for(lambda: len(mine.received()) == 2, timeout=15, what="both PMUs for consumer1")
        wait_for(lambda: len(theirs.received()) == 1, timeout=15, what="pmu1 for consumer2")
        assert {t for t, _ in mine.received()} == {
            f"granted/{whole['id']}/producer1/pmu1/voltmagnitude",
            f"granted/{whole['id']}/producer1/pmu2/voltmagnitude",
        }
        assert [t for t, _ in theirs.received()] == [
            f"granted/{narrow['id']}/producer1/pmu1/voltmagnitude"
        ]
        assert len(readable(node, consumer)) == 4
        assert [r["device"] for r in readable(node, other)] == ["pmu1"]

        # The producer revokes consumer1: its connection drops, consumer2's does not.
        post(node, f"/v1/grants/{whole['id']}/revoke", producer, reason="trial over")
        wait_for(lambda: mine.disconnects >= 1, what="consumer1 disconnected")
        assert readable(node, consumer) == []
        publish(pmu("pmu1", 2, 12), "platone/producer1/pmu1")
        wait_for(lambda: len(theirs.received()) == 2, timeout=15, what="pmu1 again")
        # consumer1's persistent session still holds its subscription and has
        # reconnected by now, but the broker no longer lets it receive.
        wait_for(lambda: mine.client.is_connected(), what="consumer1 back")
        assert len(mine.received()) == 2
        assert theirs.disconnects == 0
        again = Subscriber(mosquitto.url, *CONSUMER, f"granted/{whole['id']}/#")
        assert again.codes[0].is_failure
        # (a second connection of one login takes its session over: checked last)
        stray = Subscriber(mosquitto.url, *OTHER, f"granted/{whole['id']}/#")
        assert stray.codes[0].is_failure  # another consumer's grant is not its own
        stray.close()
        for subscriber in (mine, theirs, again):
            subscriber.close()
        device.disconnect()

        # The accept is on chain, signed by producer1; the audit lists consumer1's reads.
        evidence = node.http.get(f"/v1/grants/{whole['id']}/evidence", headers=consumer).json()
        accepted = evidence["decisions"][1]
        signer = Account.recover_message(
            encode_typed_data(full_message=accepted["typed_data"]),
            signature=accepted["signature"],
        )
        assert signer == producer_user["wallet"] == accepted["signer"]

        def reads_by_consumer1(headers: dict[str, str]) -> list[int]:
            audit = node.http.get("/v1/audit", params={"limit": 1000}, headers=headers).json()
            return [
                e["count"]
                for e in audit["items"]
                if e["who"] == "consumer1" and e["action"] == "readings.read"
            ]

        assert reads_by_consumer1(node.token()) == [0, 2, 4, 0]
        assert reads_by_consumer1(producer) == [2, 4]  # the accesses to its data
        audit = node.http.get("/v1/audit", params={"limit": 1000}, headers=producer).json()
        opened_closed = [
            (e["who"], e["action"], e["query"])
            for e in audit["items"]
            if e["action"].startswith("mqtt.access")
        ]
        assert opened_closed == [
            ("consumer1", "mqtt.access.opened", f"granted/{whole['id']}/#"),
            ("consumer2", "mqtt.access.opened", f"granted/{narrow['id']}/#"),
            ("consumer1", "mqtt.access.closed", f"granted/{whole['id']}/#"),
        ]


def test_the_broker_is_repaired_at_start_up_and_while_running(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    dynsec = control(mosquitto)
    assert not refused(mosquitto, *INTRUDER)  # the seeded drift works before the BAL
    with mosquitto.bal_node(tmp_path / "bal", broker_resync=1.0) as node:
        node.add_user(*PRODUCER)
        node.add_user(*CONSUMER, role="consumer")
        producer, consumer = node.token(*PRODUCER), node.token(*CONSUMER)
        grant = post(node, "/v1/grants", consumer, producer="producer1", devices=["pmu1"])
        post(node, f"/v1/grants/{grant['id']}/accept", producer)
        wait_for(lambda: f"bal:grant:{grant['id']}" in state(dynsec).roles, what="grant role")
        held = state(dynsec)
        assert "intruder" not in held.clients and "test:open" not in held.roles
        assert held.clients["producer1"].roles == {"bal:producer:producer1"}
        assert held.clients["consumer1"].roles == {f"bal:grant:{grant['id']}"}
        assert held.roles[f"bal:grant:{grant['id']}"] == {
            ("subscribePattern", f"granted/{grant['id']}/#", True),
            ("publishClientReceive", f"granted/{grant['id']}/#", True),
        }
        assert refused(mosquitto, *INTRUDER)

        # Drift while running: the consumer's role widened, a new open client, a
        # disabled producer enabled again behind the BAL's back.
        dynsec.request(
            [
                {
                    "command": "addRoleACL",
                    "rolename": f"bal:grant:{grant['id']}",
                    "acltype": "publishClientReceive",
                    "topic": "certified/#",
                    "allow": True,
                },
                {"command": "createClient", "username": "intruder", "password": INTRUDER[1]},
            ]
        )
        wait_for(
            lambda: (
                "intruder" not in state(dynsec).clients
                and ("publishClientReceive", "certified/#", True)
                not in state(dynsec).roles[f"bal:grant:{grant['id']}"]
            ),
            timeout=10,
            what="drift repaired by the periodic resync",
        )

    # Drift while the BAL is down: its grant role deleted, the consumer given the
    # producer's role. The next start puts both back.
    widen = {"username": "consumer1", "rolename": "bal:producer:producer1"}
    dynsec.request(
        [
            {"command": "deleteRole", "rolename": f"bal:grant:{grant['id']}"},
            {"command": "addClientRole", **widen},
        ]
    )
    with mosquitto.bal_node(tmp_path / "bal"):
        held = state(dynsec)
        assert held.clients["consumer1"].roles == {f"bal:grant:{grant['id']}"}
        assert ("publishClientReceive", f"granted/{grant['id']}/#", True) in held.roles[
            f"bal:grant:{grant['id']}"
        ]
        # Passwords survive in the plugin: consumer1 still logs in.
        assert not refused(mosquitto, *CONSUMER)
    dynsec.stop()


def test_expiry_and_disabling_close_the_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with mosquitto.bal_node(tmp_path / "bal") as node:
        node.add_user(*PRODUCER)
        node.add_user(*CONSUMER, role="consumer")
        producer, consumer = node.token(*PRODUCER), node.token(*CONSUMER)
        expires = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        grant = post(node, "/v1/grants", consumer, producer="producer1", expires=expires)
        post(node, f"/v1/grants/{grant['id']}/accept", producer)
        watcher = Subscriber(mosquitto.url, *CONSUMER, f"granted/{grant['id']}/#")
        assert not watcher.codes[0].is_failure
        # The grant expires by the clock; the next second's sync takes its role away.
        wait_for(lambda: watcher.disconnects >= 1, timeout=10, what="expiry disconnects")
        watcher.close()
        assert Subscriber(mosquitto.url, *CONSUMER, f"granted/{grant['id']}/#").codes[0].is_failure

        # A device with its own login may publish only under its own topic.
        answer = post(
            node, "/v1/devices", producer, device_id="pmu1", kind="pmu", mqtt_credentials=True
        )
        login, secret = answer["mqtt_username"], answer["mqtt_password"]
        assert login == "producer1/pmu1"
        meter = connect(mosquitto.url, login, secret)
        meter.publish("platone/producer1/pmu2", pmu("pmu2", 3, 1), qos=1).wait_for_publish(5)
        meter.publish("platone/producer1/pmu1", pmu("pmu1", 3, 2), qos=1).wait_for_publish(5)
        wait_for(lambda: len(readable(node, producer)) == 1, what="the device's own reading")
        assert readable(node, producer)[0]["device"] == "pmu1"
        meter.disconnect()

        # Disabling the device, and the producer, closes their logins on the broker.
        post(node, "/v1/devices/pmu1/disable", producer)
        wait_for(lambda: refused(mosquitto, login, secret), what="device login closed")
        post(node, "/v1/users/producer1/disable", node.token())
        wait_for(lambda: refused(mosquitto, *PRODUCER), what="producer login closed")
        post(node, "/v1/users/producer1/enable", node.token())
        wait_for(lambda: not refused(mosquitto, *PRODUCER), what="producer login open again")
