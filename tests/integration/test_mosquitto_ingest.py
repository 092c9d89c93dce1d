"""Ingest through a real Mosquitto (BAL_BROKER=mosquitto): nothing lost, nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from platone_bal.simulate import connect
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.mosquitto import Mosquitto
from tests.integration.nodes import NodeThread, wait_for

SERVICE = ("bal-service", "service-pass-1")
PRODUCER = ("producer1", "secret-pass-1")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto", dict([SERVICE, PRODUCER])).start()
    yield broker
    broker.cleanup()


def readings(node: NodeThread) -> list[dict[str, object]]:
    return list(node.get("/v1/readings", limit=1000)["items"])  # type: ignore[arg-type]


def test_readings_flow_through_mosquitto(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with mosquitto.bal_node(tmp_path / "data") as node:
        node.add_user(*PRODUCER)
        client = connect(mosquitto.url, *PRODUCER)
        # The broker's dynamic security drops a publish outside the producer's own tree
        # before the BAL sees it (MQTT 3.1.1 cannot tell the publisher).
        client.publish("platone/ghost", SAMPLE_PMU, qos=1).wait_for_publish(5)
        client.publish("platone/producer1", SAMPLE_XML, qos=1).wait_for_publish(5)
        client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
        client.disconnect()
        wait_for(lambda: len(readings(node)) == 4, what="4 readings")
        assert [r["value"] for r in readings(node)] == ["11.04", "3.45", "11", "22"]
        assert node.get("/v1/rejections")["items"] == []


def test_the_bal_refuses_what_a_broker_without_rules_lets_through(tmp_path: Path) -> None:
    """Without dynamic security the broker checks passwords only: the BAL's own ingest
    rules still refuse a producer writing under another name, with the reason."""
    broker = Mosquitto(tmp_path / "plain", dict([SERVICE, PRODUCER]), dynsec=False).start()
    try:
        with broker.bal_node(tmp_path / "data", mqtt_dynsec=False) as node:
            node.add_user(*PRODUCER)
            client = connect(broker.url, *PRODUCER)
            client.publish("platone/ghost", SAMPLE_PMU, qos=1).wait_for_publish(5)
            client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
            client.disconnect()
            wait_for(lambda: len(readings(node)) == 2, what="2 readings")
            wait_for(lambda: len(node.get("/v1/rejections")["items"]) == 1, what="rejection")  # type: ignore[arg-type]
            (rejection,) = node.get("/v1/rejections")["items"]  # type: ignore[misc]
            assert rejection["reason"] == "unknown producer 'ghost'"
    finally:
        broker.cleanup()


def test_messages_published_while_the_bal_is_down_are_not_lost(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    data_dir = tmp_path / "data"
    with mosquitto.bal_node(data_dir) as node:
        node.add_user(*PRODUCER)
    # The BAL is down; its persistent session on Mosquitto queues QoS 1 messages.
    client = connect(mosquitto.url, *PRODUCER)
    for number in range(50):
        payload = SAMPLE_PMU.replace(b'"pmu1"', f'"pmu{number}"'.encode())
        client.publish(f"platone/producer1/pmu{number}", payload, qos=1).wait_for_publish(5)
    client.disconnect()
    with mosquitto.bal_node(data_dir) as node:
        wait_for(lambda: len(readings(node)) == 100, what="queued readings")
        assert {r["device"] for r in readings(node)} == {f"pmu{n}" for n in range(50)}
    # A restart of the BAL does not store anything twice.
    with mosquitto.bal_node(data_dir) as node:
        assert len(readings(node)) == 100


def test_refused_service_credentials_fail_closed(tmp_path: Path, mosquitto: Mosquitto) -> None:
    node = NodeThread(
        tmp_path / "data",
        broker="mosquitto",
        mqtt_url=mosquitto.url,
        mqtt_username=SERVICE[0],
        mqtt_password="wrong-password",
    )
    with pytest.raises(RuntimeError, match="connection refused"):
        node.__enter__()
