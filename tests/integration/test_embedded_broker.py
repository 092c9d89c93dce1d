"""A real node with the embedded amqtt broker, driven by a real MQTT client (paho)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from platone_bal.simulate import Fleet, connect, run_fleet
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.nodes import NodeThread, wait_for


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeThread]:
    with NodeThread(tmp_path / "data") as running:
        running.add_user("producer1", "secret-pass-1")
        yield running


def mqtt_url(node: NodeThread) -> str:
    return f"mqtt://127.0.0.1:{node.settings.mqtt_port}"


def items(
    node: NodeThread, path: str = "/v1/readings", **params: object
) -> list[dict[str, object]]:
    return list(node.get(path, limit=1000, **params)["items"])  # type: ignore[arg-type]


def test_published_samples_appear_with_exact_values_and_utc_times(node: NodeThread) -> None:
    client = connect(mqtt_url(node), "producer1", "secret-pass-1")
    client.publish("platone/producer1", SAMPLE_XML, qos=1).wait_for_publish(5)
    client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
    client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)  # again
    client.disconnect()
    wait_for(lambda: len(items(node)) >= 4, what="4 readings")
    readings = items(node)
    assert [(r["device"], r["value"], r["time"]) for r in readings] == [
        ("11111111", "11.04", "2019-09-13T12:30:00.000000Z"),
        ("11111111", "3.45", "2019-09-13T12:30:00.000000Z"),
        ("pmu1", "11", "2020-05-20T10:27:57.980802Z"),
        ("pmu1", "22", "2020-05-20T10:27:57.980802Z"),
    ]


def test_wrong_topic_is_dropped_and_recorded(node: NodeThread) -> None:
    node.add_user("producer2", "secret-pass-2")
    received: list[bytes] = []
    spy = connect(mqtt_url(node), "producer2", "secret-pass-2")
    spy.on_message = lambda _c, _u, message: received.append(message.payload)
    granted: list[object] = []
    spy.on_subscribe = lambda _c, _u, _m, codes, _p: granted.extend(codes)
    spy.subscribe("platone/producer2/#", qos=1)
    wait_for(lambda: bool(granted), what="SUBACK")
    assert not granted[0].is_failure  # type: ignore[attr-defined]
    client = connect(mqtt_url(node), "producer1", "secret-pass-1")
    client.publish("platone/producer2/x", SAMPLE_PMU, qos=1).wait_for_publish(5)
    client.publish("devices/anything", b"{}", qos=1).wait_for_publish(5)
    client.disconnect()
    wait_for(lambda: len(items(node, "/v1/rejections")) == 2, what="2 rejections")
    rejections = items(node, "/v1/rejections")
    assert all(r["sender"] == "producer1" and r["producer"] == "producer1" for r in rejections)
    assert "may publish only under platone/producer1" in str(rejections[0]["reason"])
    assert items(node) == []
    assert received == []  # the broker did not forward it to producer2's tree
    spy.disconnect()


@pytest.mark.parametrize(
    ("username", "password"), [("producer1", "wrong"), ("ghost", "x"), (None, None)]
)
def test_no_anonymous_or_bad_credentials(
    node: NodeThread, username: str | None, password: str | None
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if username:
        client.username_pw_set(username, password)
    codes: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason)
    client.connect("127.0.0.1", node.settings.mqtt_port)
    client.loop_start()
    wait_for(lambda: bool(codes), what="CONNACK")
    client.loop_stop()
    assert codes[0].is_failure  # type: ignore[attr-defined]


def test_consumers_may_not_publish_or_read_ingress(node: NodeThread) -> None:
    node.add_user("consumer1", "secret-pass-3", role="consumer")
    consumer = connect(mqtt_url(node), "consumer1", "secret-pass-3")
    granted: list[object] = []
    consumer.on_subscribe = lambda _c, _u, _m, codes, _p: granted.extend(codes)
    consumer.subscribe("platone/#", qos=1)
    consumer.publish("platone/consumer1", SAMPLE_PMU, qos=1).wait_for_publish(5)
    wait_for(lambda: bool(granted), what="SUBACK")
    assert granted[0].is_failure  # type: ignore[attr-defined]
    wait_for(lambda: len(items(node, "/v1/rejections")) == 1, what="rejection")
    assert "is not a producer" in str(items(node, "/v1/rejections")[0]["reason"])
    consumer.disconnect()


def test_simulated_fleet_is_stored(node: NodeThread) -> None:
    fleet = Fleet(username="producer1", meters=3, pmus=2)
    sent = run_fleet(
        fleet, url=mqtt_url(node), password="secret-pass-1", interval=0, rounds=2, qos=1
    )
    assert sent == 10
    per_round = 3 * 2 + 2 * 13
    try:
        wait_for(lambda: len(items(node)) == 2 * per_round, timeout=30, what="fleet readings")
    except AssertionError:
        rejections = [r["reason"] for r in items(node, "/v1/rejections")]
        raise AssertionError(
            f"{len(items(node))} of {2 * per_round} readings; rejections: {rejections}"
        ) from None
    readings = items(node)
    assert {r["device"] for r in readings} == {
        "meter0001",
        "meter0002",
        "meter0003",
        "pmu001",
        "pmu002",
    }
    meter = next(r for r in readings if r["device"] == "meter0001")
    assert meter["unit"] in ("kWh", "kVArh") and meter["attrs"]["usagePoint"] == "UP-0001"  # type: ignore[index]
    assert items(node, "/v1/rejections") == []
