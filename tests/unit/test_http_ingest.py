"""POST /v1/ingest: the HTTP path into the same pipeline as MQTT."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.ports import ReadingQuery, RejectionQuery
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.conftest import MAX_PAYLOAD
from tests.unit.test_api import add_user


def test_a_producer_posts_cim_and_pmu_and_reads_them_back(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    xml = {**producer, "Content-Type": "application/xml"}
    answer = client.post("/v1/ingest", content=SAMPLE_XML, headers=xml)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "message": hashlib.sha3_256(SAMPLE_XML).hexdigest(),
        "outcome": "accepted",
        "readings": 2,
        "rejections": [],
    }
    pmu = client.post(
        "/v1/ingest",
        content=SAMPLE_PMU,
        params={"device": "pmu1"},
        headers={**producer, "Content-Type": "application/json"},
    )
    assert pmu.json()["readings"] == 2
    # 202 means committed: the readings are there at once
    rows = client.get("/v1/readings", headers=producer).json()["items"]
    assert [(r["device"], r["value"]) for r in rows] == [
        ("11111111", "11.04"),
        ("11111111", "3.45"),
        ("pmu1", "11"),
        ("pmu1", "22"),
    ]
    # posting the same bytes again stores nothing new
    again = client.post("/v1/ingest", content=SAMPLE_XML, headers=xml)
    assert again.status_code == 202
    assert len(store.readings(ReadingQuery(limit=100))) == 4
    (channel,) = {m for (m,) in store._connection().execute("SELECT channel FROM messages")}
    assert channel == "http"


def test_bad_payloads_get_a_problem_with_the_reason_and_are_recorded(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    answer = client.post("/v1/ingest", content=b"<not-cim/>", headers=producer)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    reason = answer.json()["detail"]
    assert reason
    recorded = store.rejections(RejectionQuery(producer="producer1"))
    assert [r.reason for r in recorded] == [reason]
    assert recorded[0].channel == "http"
    too_big = client.post("/v1/ingest", content=b"x" * (MAX_PAYLOAD + 10), headers=producer)
    assert too_big.status_code == 413
    assert f"limit of {MAX_PAYLOAD} bytes" in too_big.json()["detail"]
    assert len(store.rejections(RejectionQuery(producer="producer1"))) == 2
    # the pipeline goes on
    ok = client.post("/v1/ingest", content=SAMPLE_PMU, headers=producer)
    assert ok.status_code == 202


def test_only_producers_with_the_ingest_scope_post(
    client: TestClient, admin: dict[str, str]
) -> None:
    consumer = add_user(client, admin, "consumer1", "consumer")
    add_user(client, admin, "producer1", "producer")
    assert client.post("/v1/ingest", content=SAMPLE_PMU).status_code == 401
    assert client.post("/v1/ingest", content=SAMPLE_PMU, headers=consumer).status_code == 403
    assert client.post("/v1/ingest", content=SAMPLE_PMU, headers=admin).status_code == 403
    read_only = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "producer1",
            "password": "pass-producer1",
            "scope": "data:read",
        },
    ).json()["access_token"]
    denied = client.post(
        "/v1/ingest", content=SAMPLE_PMU, headers={"Authorization": f"Bearer {read_only}"}
    )
    assert denied.status_code == 403
    bad_device = client.post(
        "/v1/ingest",
        content=SAMPLE_PMU,
        params={"device": "a/b"},
        headers={"Authorization": f"Bearer {read_only}"},
    )
    assert bad_device.status_code == 403  # scope is checked before anything else
