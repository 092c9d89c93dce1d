"""Devices: registration rules and what a device login may publish."""

from __future__ import annotations

from eth_account import Account
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.devices import device_publish_refusal, key_address, parse_device_login
from platone_bal.ports import ReadingQuery, RejectionQuery
from platone_bal.services.ingest import IngestService
from tests.conftest import SAMPLE_PMU
from tests.unit.test_api import add_user
from tests.unit.test_ingest import delivery


def test_producers_register_devices_with_optional_mqtt_credentials(
    client: TestClient, admin: dict[str, str]
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    plain = client.post(
        "/v1/devices", json={"device_id": "meter0042", "kind": "meter"}, headers=producer
    )
    assert plain.status_code == 201, plain.text
    assert plain.json()["mqtt_username"] is None and plain.json()["mqtt_password"] is None
    assert plain.json()["topic"] == "platone/producer1/meter0042"
    pmu = client.post(
        "/v1/devices",
        json={"device_id": "pmu1", "kind": "pmu", "mqtt_credentials": True},
        headers=producer,
    ).json()
    assert pmu["mqtt_username"] == "producer1/pmu1" and len(pmu["mqtt_password"]) >= 24
    again = client.post("/v1/devices", json={"device_id": "pmu1", "kind": "pmu"}, headers=producer)
    assert again.status_code == 409
    bad = client.post("/v1/devices", json={"device_id": "a/b", "kind": "pmu"}, headers=producer)
    assert bad.status_code == 422
    by_consumer = client.post(
        "/v1/devices", json={"device_id": "x1", "kind": "pmu"}, headers=consumer
    )
    assert by_consumer.status_code == 403
    for_producer = client.post(
        "/v1/devices",
        json={"device_id": "ln1", "kind": "light-node", "producer": "producer1"},
        headers=admin,
    )
    assert for_producer.status_code == 201
    listed = client.get("/v1/devices", headers=producer).json()
    assert [d["device_id"] for d in listed] == ["ln1", "meter0042", "pmu1"]
    assert all("mqtt_password" not in d for d in listed)
    assert client.get("/v1/devices", headers=consumer).status_code == 403
    off = client.post("/v1/devices/pmu1/disable", headers=producer)
    assert off.json()["disabled"] is True
    assert client.post("/v1/devices/nope/disable", headers=producer).status_code == 404


def test_a_device_publishes_only_its_own_topic_and_readings(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    client.post(
        "/v1/devices",
        json={"device_id": "pmu1", "kind": "pmu", "mqtt_credentials": True},
        headers=producer,
    )
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
    login = "producer1/pmu1"
    own = ingest.ingest([delivery(SAMPLE_PMU, "platone/producer1/pmu1", sender=login)])
    assert own.readings == 2
    other_topic = ingest.ingest(
        [delivery(SAMPLE_PMU.replace(b"11", b"13", 1), "platone/producer1/pmu2", sender=login)]
    )
    assert other_topic.readings == 0
    foreign = SAMPLE_PMU.replace(b'"pmu1"', b'"pmu9"')
    other_device = ingest.ingest([delivery(foreign, "platone/producer1/pmu1", sender=login)])
    assert other_device.readings == 0
    reasons = [r.reason for r in store.rejections(RejectionQuery(producer="producer1"))]
    assert "may publish only under platone/producer1/pmu1" in reasons[0]
    assert "may send only its own readings" in reasons[1]
    assert len(store.readings(ReadingQuery())) == 2
    store.disable_device("producer1", "pmu1")
    late = ingest.ingest(
        [delivery(SAMPLE_PMU.replace(b"11", b"14", 1), "platone/producer1/pmu1", sender=login)]
    )
    assert late.readings == 0


def test_device_logins_and_topics() -> None:
    assert parse_device_login("producer1/pmu1") == ("producer1", "pmu1")
    assert parse_device_login("producer1") is None
    assert parse_device_login("a/b/c") is None
    assert device_publish_refusal("producer1", "pmu1", "platone/producer1/pmu1/x") is None
    assert device_publish_refusal("producer1", "pmu1", "platone/producer1/pmu10") is not None
    assert device_publish_refusal("producer1", "pmu1", "platone/producer1") is not None


def test_device_keys_are_addresses_or_uncompressed_public_keys(
    client: TestClient, admin: dict[str, str]
) -> None:
    account = Account.create()
    public = account._key_obj.public_key.to_hex()  # 64 bytes, 0x-prefixed
    assert key_address(account.address) == account.address
    assert key_address(public) == account.address
    assert key_address("0x04" + public[2:]) == account.address
    assert key_address("0x1234") is None and key_address("zz") is None
    producer = add_user(client, admin, "producer1", "producer")
    bad = client.post(
        "/v1/devices",
        json={"device_id": "m1", "kind": "meter", "public_key": "0x1234"},
        headers=producer,
    )
    assert bad.status_code == 422 and "public_key" in bad.json()["detail"]
