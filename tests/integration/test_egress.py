"""Certified readings arrive on certified/NAME/DEVICE through the node's own Mosquitto and
an outside one, with the exact certified leaf; who may subscribe is the broker's rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from platone_bal.simulate import connect
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.mosquitto import Mosquitto
from tests.integration.nodes import ADMIN_PASSWORD, NodeThread, wait_for
from tests.integration.subscribers import Subscriber

SERVICE = ("bal-service", "service-pass-1")
PRODUCER = ("producer1", "secret-pass-1")

ACTIVE = "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.72.0"  # the CIM sample's two reading types
REACTIVE = "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.73.0"


def check_certified(node: NodeThread, received: list[tuple[str, dict[str, Any]]]) -> None:
    topics = [topic for topic, _ in received]
    assert topics == [
        f"certified/producer1/11111111/{ACTIVE}",
        f"certified/producer1/11111111/{REACTIVE}",
        "certified/producer1/pmu1/voltmagnitude",
        "certified/producer1/pmu1/voltmagnitude",
    ]
    bodies = [body for _, body in received]
    assert [b["leaf"]["value"] for b in bodies] == ["11.04", "3.45", "11", "22"]
    assert [b["index"] for b in bodies] == [0, 1, 2, 3]
    for body in bodies:
        assert body["checkpoint_size"] > body["index"] and body["log"] == "bal-main"
        proof = node.get(f"/v1/readings/{body['index'] + 1}/proof")
        assert proof["leaf"] == body["leaf"]  # the subscriber got the certified leaf itself


def test_the_nodes_own_broker_republishes_certified_readings(tmp_path: Path) -> None:
    with NodeThread(tmp_path / "bal") as node:
        node.add_user(*PRODUCER)
        node.add_user("consumer1", "secret-pass-2", role="consumer")
        url = f"mqtt://127.0.0.1:{node.settings.mqtt_port}"
        own = Subscriber(url, *PRODUCER, "certified/producer1/#")
        assert not own.codes[0].is_failure  # a producer may read its own certified data
        own.close()
        # the admin watches: producer1 publishes below, and a second connection of one
        # login takes its session over (one session per login)
        watcher = Subscriber(url, "admin", ADMIN_PASSWORD, "certified/producer1/#")
        outsider = Subscriber(url, "consumer1", "secret-pass-2", "certified/producer1/#")
        assert outsider.codes[0].is_failure  # no grant, no data (grants: issue 5)
        publisher = connect(url, *PRODUCER)
        publisher.publish("platone/producer1", SAMPLE_XML, qos=1).wait_for_publish(5)
        publisher.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
        publisher.disconnect()
        wait_for(lambda: len(watcher.messages) == 4, timeout=10, what="4 certified messages")
        check_certified(node, watcher.messages)
        assert outsider.messages == []
        watcher.close()
        outsider.close()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto", dict([SERVICE, PRODUCER])).start()
    yield broker
    broker.cleanup()


def test_mosquitto_gets_certified_readings_after_an_outage(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with mosquitto.bal_node(tmp_path / "bal") as node:
        node.add_user(*PRODUCER)
        watcher = Subscriber(mosquitto.url, *SERVICE, "certified/#")
        producer = node.token(*PRODUCER)
        node.http.post("/v1/ingest", content=SAMPLE_XML, headers=producer).raise_for_status()
        wait_for(lambda: len(watcher.messages) == 2, timeout=10, what="first 2 messages")
        watcher.close()
        mosquitto.stop()  # the broker goes away; ingest over HTTP goes on
        node.http.post(
            "/v1/ingest", content=SAMPLE_PMU, params={"device": "pmu1"}, headers=producer
        ).raise_for_status()
        mosquitto.start()  # the watcher's session and subscription survive in its database
        again = Subscriber(mosquitto.url, *SERVICE, "certified/#", watcher.messages)
        wait_for(lambda: len(again.messages) >= 4, timeout=40, what="messages after outage")
        check_certified(node, again.messages[:4])
        again.close()


def test_consumers_receive_certified_data_only_while_and_where_a_grant_holds(
    tmp_path: Path,
) -> None:
    with NodeThread(tmp_path / "bal") as node:
        node.add_user(*PRODUCER)
        node.add_user("consumer1", "secret-pass-2", role="consumer")
        url = f"mqtt://127.0.0.1:{node.settings.mqtt_port}"
        producer = node.token(*PRODUCER)
        consumer = node.token("consumer1", "secret-pass-2")
        grant = node.http.post(
            "/v1/grants", json={"producer": "producer1"}, headers=consumer
        ).json()
        mine = f"granted/{grant['id']}/#"
        early = Subscriber(url, "consumer1", "secret-pass-2", mine)
        assert early.codes[0].is_failure  # not accepted yet
        early.close()
        node.http.post(
            f"/v1/grants/{grant['id']}/accept", json={"devices": ["pmu1"]}, headers=producer
        ).raise_for_status()
        watcher = Subscriber(url, "consumer1", "secret-pass-2", mine)
        assert not watcher.codes[0].is_failure
        for elsewhere in ("certified/producer1/#", "granted/+/#", "granted/#"):
            refused = Subscriber(url, "consumer1", "secret-pass-2", elsewhere)
            assert refused.codes[0].is_failure, elsewhere  # only its own grant's topics
            refused.close()
        own = Subscriber(url, *PRODUCER, "certified/producer1/#")

        node.http.post("/v1/ingest", content=SAMPLE_XML, headers=producer).raise_for_status()
        node.http.post(
            "/v1/ingest", content=SAMPLE_PMU, params={"device": "pmu1"}, headers=producer
        ).raise_for_status()
        wait_for(lambda: len(own.messages) == 4, timeout=10, what="producer's 4 messages")
        wait_for(lambda: len(watcher.messages) == 2, timeout=5, what="consumer's 2 messages")
        assert {topic for topic, _ in watcher.messages} == {
            f"granted/{grant['id']}/producer1/pmu1/voltmagnitude"
        }

        node.http.post(
            f"/v1/grants/{grant['id']}/revoke", json={"reason": "over"}, headers=consumer
        ).raise_for_status()
        later = SAMPLE_PMU.replace(b"11", b"12", 1)  # new bytes, not a redelivery
        node.http.post("/v1/ingest", content=later, headers=producer).raise_for_status()
        wait_for(lambda: len(own.messages) == 6, timeout=10, what="producer's next messages")
        assert len(watcher.messages) == 2  # the revoke stopped delivery at once
        watcher.close()
        own.close()

        # MQTT access is in the audit log: when the consumer's channel opened and closed
        def mqtt_entries() -> list[tuple[str, str, str]]:
            items = node.get("/v1/audit", limit=1000)["items"]
            return [
                (e["who"], e["action"], e["query"])
                for e in items  # type: ignore[attr-defined]
                if e["channel"] == "mqtt"
            ]

        wait_for(lambda: len(mqtt_entries()) == 2, what="access opened and closed, audited")
        actions = [(who, action) for who, action, _ in mqtt_entries()]
        assert actions == [("consumer1", "mqtt.access.opened"), ("consumer1", "mqtt.access.closed")]
        assert all(query == mine for _, _, query in mqtt_entries())
        mine = node.http.get("/v1/audit", params={"limit": 1000}, headers=producer).json()
        assert any(e["action"] == "mqtt.access.opened" for e in mine["items"])
