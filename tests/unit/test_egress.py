"""Egress paging, position and failure handling against a real store (the brokers are
the integration tests' part)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.grants import Slice
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.users import Role, User, certified_topic, topic_level
from platone_bal.services import egress as egress_module
from platone_bal.services.archiver import Archiver
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.egress import Egress, KafkaEgress
from platone_bal.services.grants import GrantService
from platone_bal.services.ingest import IngestService
from platone_bal.services.users import UserService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.contract.builders import LOG
from tests.unit.test_checkpoints import KEY
from tests.unit.test_ingest import NOW, delivery

ACTIVE = "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.72.0"  # the CIM sample's two reading types
REACTIVE = "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.73.0"


class Recording:
    """A CertifiedSink that keeps what it is given, or refuses while `down`."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.down = False

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.messages.extend(messages)


def test_only_checkpointed_readings_go_out_once_each_with_their_certified_leaf(
    store: SqliteStore, producer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(egress_module, "PAGE", 3)  # several pages for 4 readings
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 20)
    checkpointer = Checkpointer(store, log_id="bal-main", private_key=KEY, clock=lambda: NOW)
    sink = Recording()
    egress = Egress(store, sink, log_id="bal-main")
    ingest.ingest([delivery(SAMPLE_XML)])
    assert egress.publish_pending() == 0  # not yet covered by a signed checkpoint
    checkpointer.checkpoint_now()
    ingest.ingest([delivery(SAMPLE_PMU, "platone/producer1/pmu1")])
    assert egress.publish_pending() == 2
    checkpointer.checkpoint_now()
    sink.down = True
    with pytest.raises(ConnectionError):
        egress.publish_pending()
    assert store.egress_position("bal-main") == 2  # nothing counted as sent
    sink.down = False
    assert egress.publish_pending() == 2
    assert egress.publish_pending() == 0
    topics = [topic for topic, _ in sink.messages]
    assert topics == [
        f"certified/producer1/11111111/{ACTIVE}",
        f"certified/producer1/11111111/{REACTIVE}",
        "certified/producer1/pmu1/voltmagnitude",
        "certified/producer1/pmu1/voltmagnitude",
    ]
    bodies = [json.loads(payload) for _, payload in sink.messages]
    assert [b["index"] for b in bodies] == [0, 1, 2, 3]
    assert [b["checkpoint_size"] for b in bodies] == [2, 2, 4, 4]
    for _, payload in sink.messages:
        body = json.loads(payload)
        leaf = store.leaf_bytes("bal-main", body["index"])
        assert leaf is not None and leaf in payload  # the exact certified bytes
        assert store.nodes("bal-main").node(0, body["index"]) == SHA3_256.hash_leaf(leaf)


def test_device_ids_become_one_topic_level_one_to_one() -> None:
    assert certified_topic("producer1", "a/b+c#d", "m") == "certified/producer1/a%2Fb%2Bc%23d/m"
    names = ["m_1", "m/1", "m+1", "m#1", "m%1", "m%2F1", "m\0" + "1"]
    assert len({topic_level(name) for name in names}) == len(names)
    assert all("/" not in topic_level(n) and "+" not in topic_level(n) for n in names)


def test_each_active_grant_gets_exactly_the_readings_rest_would_show(
    store: SqliteStore, producer: User, users: UserService
) -> None:
    """Per grant, by measurement time (not delivery time), by exact device id (`m_1`
    does not receive `m/1`), only while the grant is active."""
    grants = GrantService(store, lambda: NOW)

    def accepted(scope: dict[str, object], expires: datetime | None = None) -> int:
        """A grant of a consumer of its own (one accepted grant per pair)."""
        name = f"consumer{len(store.grants_of(None)) + 1}"
        consumer = users.create(name, "pass-" + name, Role.CONSUMER)
        asked = grants.request(consumer, Slice("producer1", **scope), expires)  # type: ignore[arg-type]
        return grants.accept(asked.id, producer).id

    all_data = accepted({})
    exact = accepted({"devices": frozenset({"m_1"})})
    window = accepted({"since": datetime(2020, 1, 1, tzinfo=UTC)})
    old = accepted({"until": datetime(2020, 1, 1, tzinfo=UTC)})
    gone = accepted({}, expires=NOW + timedelta(minutes=1))
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 20)
    readings = [("m_1", "2015-06-01T00:00:00Z"), ("m/1", "2021-06-01T00:00:00Z")]
    for device, time in readings:
        payload = {"device": device, "timestamp": time, "readings": [{"measurand": "v", "data": 1}]}
        ingest.ingest([delivery(json.dumps(payload).encode())])
    Checkpointer(store, log_id="bal-main", private_key=KEY, clock=lambda: NOW).checkpoint_now()
    sink = Recording()
    Egress(store, sink, log_id="bal-main", clock=lambda: NOW + timedelta(hours=1)).publish_pending()
    topics = sorted(topic for topic, _ in sink.messages)
    assert topics == sorted(
        [
            "certified/producer1/m_1/v",
            f"granted/{all_data}/producer1/m_1/v",
            f"granted/{exact}/producer1/m_1/v",
            f"granted/{old}/producer1/m_1/v",
            "certified/producer1/m%2F1/v",
            f"granted/{all_data}/producer1/m%2F1/v",
            f"granted/{window}/producer1/m%2F1/v",
        ]
    )
    assert gone not in {int(t.split("/")[1]) for t in topics if t.startswith("granted/")}


def test_egress_far_behind_skips_archived_days_without_stalling(
    store: SqliteStore, archiver: Archiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Egress that fell behind the hot window (a broker away for two months) finds an
    archived day's indices gone: it publishes the live readings after them, never the
    ones past the checkpoint, and its position reaches the checkpoint's size."""
    monkeypatch.setattr(egress_module, "PAGE", 5)
    archiver.archive_due()
    sink = Recording()
    egress = Egress(store, sink, log_id=LOG)
    assert egress.publish_pending() == 13  # fill_days's third day, the one still live
    assert store.egress_position(LOG) == store.log_size(LOG) == 38
    assert {json.loads(body)["leaf"]["time"][:10] for _, body in sink.messages} == {"2026-03-03"}
    assert egress.publish_pending() == 0


class Records:
    """A StreamSink that keeps what it is given, or refuses while `down`."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []
        self.down = False

    def produce(self, records: Sequence[tuple[str, str, bytes]]) -> None:
        if self.down:
            raise ConnectionError("Kafka down")
        self.records.extend(records)


def test_kafka_gets_each_reading_keyed_by_device_with_a_position_of_its_own(
    store: SqliteStore, producer: User
) -> None:
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 20)
    checkpointer = Checkpointer(store, log_id="bal-main", private_key=KEY, clock=lambda: NOW)
    mqtt, kafka = Recording(), Records()
    egress = Egress(store, mqtt, log_id="bal-main")
    streams = KafkaEgress(store, kafka, log_id="bal-main")
    ingest.ingest([delivery(SAMPLE_XML), delivery(SAMPLE_PMU, "platone/producer1/pmu1")])
    checkpointer.checkpoint_now()
    kafka.down = True
    with pytest.raises(ConnectionError):
        streams.publish_pending()
    assert egress.publish_pending() == 4  # MQTT goes on while Kafka is away
    assert store.egress_position("kafka:bal-main") == 0
    kafka.down = False
    assert streams.publish_pending() == 4
    assert streams.publish_pending() == 0
    assert [(topic, key) for topic, key, _ in kafka.records] == [
        ("bal.certified.producer1", "11111111"),
        ("bal.certified.producer1", "11111111"),
        ("bal.certified.producer1", "pmu1"),
        ("bal.certified.producer1", "pmu1"),
    ]
    # the value is the MQTT egress message, byte for byte
    assert [value for _, _, value in kafka.records] == [body for _, body in mqtt.messages]
