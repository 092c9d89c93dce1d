"""Certified readings on Kafka (§8, issue 18): a real node produces to a real
Kafka-protocol broker (Tansu); a plain confluent-kafka consumer group reads
`bal.certified.NAME` and gets every certified reading, keyed by its device, valued as the
MQTT egress message, also across an outage of the broker (which restarts empty: what
the node produces after it is everything it had not been acknowledged)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from platone_bal.services.egress import certified_message
from tests.contract.builders import pmu_payload
from tests.integration.nodes import NodeThread, publish_as_producer1, wait_for
from tests.integration.tansu import Tansu

pytestmark = pytest.mark.integration

TOPIC = "bal.certified.producer1"


@pytest.fixture
def tansu() -> Iterator[Tansu]:
    broker = Tansu().start()
    try:
        yield broker
    finally:
        broker.stop()


def consume(
    bootstrap: str, group: str, wanted: int, timeout: float = 60.0
) -> list[tuple[str, bytes]]:
    """(key, value) of the topic's records, read by a consumer group until `wanted`."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "enable.auto.commit": True,
    })  # fmt: skip
    consumer.subscribe([TOPIC])
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < wanted and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            key, value = message.key(), message.value()
            assert key is not None and value is not None
            got.append((key.decode(), value))
    finally:
        consumer.close()
    return got


def payloads(first: int, count: int) -> list[bytes]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        pmu_payload(f"pmu-{n}", start + timedelta(seconds=n), [("voltage", f"{230 + n % 10}")])
        for n in range(first, first + count)
    ]


def test_every_certified_reading_reaches_a_consumer_group_across_a_broker_outage(
    tmp_path: Path, tansu: Tansu
) -> None:
    with NodeThread(
        tmp_path / "bal", kafka_bootstrap=tansu.bootstrap, kafka_delivery_timeout=5.0
    ) as node:
        node.add_user("producer1", "secret-pass-1")
        store, log = node.node.store, node.settings.log_id
        publish_as_producer1(node, *payloads(0, 20))
        before = consume(tansu.bootstrap, "dso-platform", 20)
        assert len(before) == 20

        tansu.stop()  # an outage: the node goes on storing and certifying
        publish_as_producer1(node, *payloads(20, 30))
        wait_for(lambda: store.log_size(log) == 50, timeout=30, what="50 readings stored")
        wait_for(
            lambda: (c := store.latest_checkpoint(log)) is not None and c.checkpoint.size == 50,
            timeout=30, what="a checkpoint of 50",
        )  # fmt: skip
        time.sleep(1)  # the Kafka egress fails meanwhile and keeps its position
        assert store.egress_position(f"kafka:{log}") == 20
        assert store.egress_position(log) == 50  # MQTT egress is not held up

        tansu.start()  # back, empty (memory storage): the node sends what it had not sent
        after = consume(tansu.bootstrap, "dso-platform-2", 30, timeout=90)
        assert len(after) == 30
        wait_for(lambda: store.egress_position(f"kafka:{log}") == 50, what="kafka position 50")

        received = {json.loads(value)["index"]: (key, value) for key, value in before + after}
        assert sorted(received) == list(range(50))  # every certified reading, once here
        for index, (key, value) in received.items():
            leaf = store.leaf_bytes(log, index)
            assert leaf is not None
            body = json.loads(value)
            assert value == certified_message(log, index, body["checkpoint_size"], leaf)
            assert key == json.loads(leaf)["device"]
