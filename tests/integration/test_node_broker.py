"""The node's own Mosquitto, driven by real MQTT clients (paho) as devices and hostile
users would: what is stored, who may publish and read, and who may not act as whom."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from platone_bal.simulate import Fleet, connect, run_fleet
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.nodes import ADMIN_PASSWORD, NodeThread, wait_for


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


def pmu(device: str, value: str = "50") -> bytes:
    return SAMPLE_PMU.replace(b'"pmu1"', f'"{device}"'.encode()).replace(b"11", value.encode(), 1)


class Inbox:
    """A client's received messages and SUBACK codes."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, bytes]] = []
        self.codes: list[object] = []
        self.disconnected = threading.Event()
        client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        client.on_subscribe = lambda _c, _u, _m, codes, _p: self.codes.extend(codes)
        client.on_disconnect = lambda *_: self.disconnected.set()

    def subscribe(self, topic: str) -> bool:
        """True if the broker granted it."""
        self.codes.clear()
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: bool(self.codes), what="SUBACK")
        return not self.codes[0].is_failure  # type: ignore[attr-defined]


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


def test_another_producers_topic_is_refused_by_the_broker(node: NodeThread) -> None:
    node.add_user("producer2", "secret-pass-2")
    spy = Inbox(connect(mqtt_url(node), "producer2", "secret-pass-2"))
    assert spy.subscribe("platone/producer2/#")
    client = connect(mqtt_url(node), "producer1", "secret-pass-1")
    client.publish("platone/producer2/x", SAMPLE_PMU, qos=1).wait_for_publish(5)
    client.publish("devices/anything", b"{}", qos=1).wait_for_publish(5)
    client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
    client.disconnect()
    wait_for(lambda: len(items(node)) == 2, what="producer1's own readings")
    assert {r["producer"] for r in items(node)} == {"producer1"}
    assert spy.messages == []  # never reached producer2's tree
    spy.client.disconnect()


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
    consumer = Inbox(connect(mqtt_url(node), "consumer1", "secret-pass-3"))
    assert not consumer.subscribe("platone/#")
    assert not consumer.subscribe("certified/producer1/#")
    assert not consumer.subscribe("granted/#")
    consumer.client.publish("platone/consumer1", SAMPLE_PMU, qos=1).wait_for_publish(5)
    consumer.client.publish("platone/producer1", SAMPLE_PMU, qos=1).wait_for_publish(5)
    producer = connect(mqtt_url(node), "producer1", "secret-pass-1")
    producer.publish("platone/producer1/pmu1", pmu("pmu7"), qos=1).wait_for_publish(5)
    wait_for(lambda: len(items(node)) == 2, what="the producer's readings")
    assert {r["device"] for r in items(node)} == {"pmu7"}
    assert consumer.messages == []
    producer.disconnect()
    consumer.client.disconnect()


def test_simulated_fleet_is_stored(node: NodeThread) -> None:
    fleet = Fleet(username="producer1", meters=3, pmus=2)
    sent = run_fleet(
        fleet, url=mqtt_url(node), password="secret-pass-1", interval=0, rounds=2, qos=1
    )
    assert sent == 10
    per_round = 3 * 2 + 2 * 13
    wait_for(lambda: len(items(node)) == 2 * per_round, timeout=30, what="fleet readings")
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


# Probes: acting as someone else


def test_a_reused_client_id_does_not_lend_the_producers_identity(node: NodeThread) -> None:
    """The embedded amqtt broker looked identity up by client id, last login winning: a
    consumer reusing a producer's client id published as that producer."""
    node.add_user("consumer1", "secret-pass-3", role="consumer")
    producer = connect(mqtt_url(node), "producer1", "secret-pass-1", client_id="meter-gw")
    intruder = connect(mqtt_url(node), "consumer1", "secret-pass-3", client_id="meter-gw")
    intruder.publish("platone/producer1/pmu1", pmu("forged"), qos=1).wait_for_publish(5)
    intruder.disconnect()
    intruder.loop_stop()
    producer = connect(mqtt_url(node), "producer1", "secret-pass-1", client_id="meter-gw")
    producer.publish("platone/producer1/pmu1", pmu("genuine"), qos=1).wait_for_publish(5)
    wait_for(lambda: len(items(node)) == 2, what="the genuine readings")
    time.sleep(0.5)
    assert {r["device"] for r in items(node)} == {"genuine"}
    producer.disconnect()


def test_no_login_can_take_over_the_nodes_own_sessions(node: NodeThread) -> None:
    """Mosquitto lets any login resume any client id: with the node's well-known ingest
    id a user could have ended its session and dropped what was queued for it, though
    already acknowledged to devices. The node's ids are on a private socket, and on the
    public listener a client id is its login."""
    for client_id in ("bal:ingest", "bal:ingest-egress", "bal:ingest-dynsec", "bal-ingest"):
        intruder = connect(mqtt_url(node), "producer1", "secret-pass-1", client_id=client_id)
        intruder.publish("platone/producer1/pmu1", pmu(client_id.replace(":", "_")), qos=1)
        intruder.disconnect()
        intruder.loop_stop()
    wait_for(lambda: len(items(node)) == 8, what="every reading, ingest undisturbed")
    node.add_user("producer2", "secret-pass-2")  # the rule sync's session still works
    connect(mqtt_url(node), "producer2", "secret-pass-2").disconnect()


def test_a_session_is_its_logins_and_no_one_elses(node: NodeThread) -> None:
    """amqtt handed a producer's queued session to whoever logged in with its client id;
    Mosquitto alone would hand it over too (delivering nothing, but dropping the queue).
    On the node's broker a client id is its login: another user asking for it gets a
    session of its own, and the owner's queue is intact when it comes back."""
    node.add_user("consumer1", "secret-pass-3", role="consumer")

    def session(username: str, password: str, client_id: str) -> Inbox:
        """A persistent session whose inbox is ready before CONNECT: queued messages
        arrive right after the CONNACK."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(username, password)
        inbox = Inbox(client)
        client.connect("127.0.0.1", node.settings.mqtt_port)
        client.loop_start()
        wait_for(client.is_connected, what=f"{username} connected")
        return inbox

    owner = session("producer1", "secret-pass-1", "p1-watch")
    assert owner.subscribe("certified/producer1/#")
    assert owner.subscribe("platone/producer1/#")
    owner.client.disconnect()
    owner.client.loop_stop()
    producer = node.token("producer1", "secret-pass-1")
    for n in range(3):  # over HTTP: an MQTT login of producer1 would be its session
        node.http.post("/v1/ingest", content=pmu(f"queued{n}"), headers=producer).raise_for_status()
    wait_for(lambda: len(items(node)) == 6, what="readings stored")
    time.sleep(1.5)  # certified and republished, so queued for the absent session
    for asked in ("p1-watch", "producer1"):  # what the owner asked for, and its login
        thief = session("consumer1", "secret-pass-3", asked)
        time.sleep(0.5)
        assert thief.messages == []
        thief.client.disconnect()
        thief.client.loop_stop()
    owner = session("producer1", "secret-pass-1", "anything")
    wait_for(lambda: len(owner.messages) == 6, what="the owner's queued messages")
    assert {topic.split("/")[0] for topic, _ in owner.messages} == {"certified"}
    owner.client.disconnect()
    owner.client.loop_stop()


def test_a_last_will_cannot_forge_certified_data_or_escape_ingest(node: NodeThread) -> None:
    """amqtt published Last Wills past the ACL and never ingested them."""
    node.add_user("consumer1", "secret-pass-3", role="consumer")
    # the admin watches: a second connection of producer1 would take its session over
    watcher = Inbox(connect(mqtt_url(node), "admin", ADMIN_PASSWORD))
    assert watcher.subscribe("certified/producer1/#")
    outcomes: list[str] = []
    for username, password, topic in (
        ("consumer1", "secret-pass-3", "certified/producer1/pmu1/voltmagnitude"),
        ("producer1", "secret-pass-1", "certified/producer1/pmu1/voltmagnitude"),
        ("producer1", "secret-pass-1", "platone/producer1/pmu1"),
    ):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.username_pw_set(username, password)
        client.will_set(topic, pmu(f"will-{username}-{topic.split('/')[0]}"), qos=1)
        codes: list[object] = []
        client.on_connect = lambda _c, _u, _f, reason, _p, codes=codes: codes.append(reason)
        client.connect("127.0.0.1", node.settings.mqtt_port)
        client.loop_start()
        wait_for(lambda codes=codes: bool(codes), what="CONNACK")
        refused = codes[0].is_failure  # type: ignore[attr-defined]
        outcomes.append("refused" if refused else "accepted")
        client.loop_stop()
        if not refused:  # die without DISCONNECT: the broker publishes the will
            sock = client.socket()
            assert isinstance(sock, socket.socket)
            sock.close()
    # the will on the producer's own ingress topic is ingested like any publish
    wait_for(lambda: len(items(node)) == 2, what="the will's readings")
    assert {r["device"] for r in items(node)} == {"will-producer1-platone"}
    time.sleep(1.5)
    certified = [json.loads(payload) for _, payload in watcher.messages]
    assert [message["leaf"]["device"] for message in certified] == ["will-producer1-platone"] * 2
    assert all(message["log"] == "bal-main" for message in certified)  # nothing forged
    # Mosquitto 2.0.11 accepts such a CONNECT and checks the will against the publish
    # ACL when it would publish it: the forged wills above were dropped there.
    assert outcomes == ["accepted"] * 3
    watcher.client.disconnect()


def test_disabling_a_user_ends_its_live_connection_at_once(node: NodeThread) -> None:
    watcher = Inbox(connect(mqtt_url(node), "producer1", "secret-pass-1"))
    assert watcher.subscribe("certified/producer1/#")
    node.http.post("/v1/users/producer1/disable", headers=node.token()).raise_for_status()
    assert watcher.disconnected.wait(5)
    watcher.client.loop_stop()
    with pytest.raises(ConnectionError):
        connect(mqtt_url(node), "producer1", "secret-pass-1")
