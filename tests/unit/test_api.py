"""The HTTP API through FastAPI's test client, on a real SQLite store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.messages import Channel
from platone_bal.services.ingest import Delivery, IngestService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML

KEY = "k" * 64


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    answer = client.post(
        "/oauth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def add_user(client: TestClient, admin: dict[str, str], name: str, role: str) -> dict[str, str]:
    answer = client.post(
        "/v1/users",
        json={"username": name, "password": "pass-" + name, "role": role},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    return login(client, name, "pass-" + name)


def publish(store: SqliteStore, producer: str, payload: bytes) -> None:
    IngestService(store, log_id="bal-main", max_payload_bytes=1 << 20).ingest(
        [Delivery(Channel.MQTT, f"platone/{producer}", payload, datetime.now(UTC))]
    )


def test_healthz_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert "bal_ingest_readings_total" in client.get("/metrics").text


def test_token_errors_follow_rfc6749(client: TestClient) -> None:
    wrong = client.post(
        "/oauth/token", data={"grant_type": "password", "username": "admin", "password": "nope"}
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    unknown = client.post(
        "/oauth/token", data={"grant_type": "password", "username": "ghost", "password": "nope"}
    )
    assert unknown.json()["error"] == "invalid_grant"
    grant = client.post("/oauth/token", data={"grant_type": "implicit"})
    assert grant.json()["error"] == "unsupported_grant_type"


def test_create_user_answers_as_the_contract_says(
    client: TestClient, admin: dict[str, str]
) -> None:
    answer = client.post(
        "/v1/users",
        json={"username": "producer1", "password": "secret-pass-1", "role": "producer"},
        headers=admin,
    )
    assert answer.status_code == 201
    body = answer.json()
    assert body["username"] == "producer1" and body["role"] == "producer"
    assert body["topic"] == "platone/producer1"
    assert body["wallet"].startswith("0x") and len(body["wallet"]) == 42
    assert body["wallet"] != body["wallet"].lower()  # EIP-55 mixed case
    again = client.post(
        "/v1/users",
        json={"username": "producer1", "password": "secret-pass-1", "role": "producer"},
        headers=admin,
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    bad = client.post(
        "/v1/users",
        json={"username": "a/b", "password": "secret-pass-1", "role": "producer"},
        headers=admin,
    )
    assert bad.status_code == 422
    consumer = client.post(
        "/v1/users",
        json={"username": "c1", "password": "secret-pass-1", "role": "consumer"},
        headers=admin,
    )
    assert consumer.json()["topic"] is None
    listed = client.get("/v1/users", headers=admin).json()
    assert [u["username"] for u in listed] == ["admin", "c1", "producer1"]


def test_auth_matrix(client: TestClient, admin: dict[str, str], store: SqliteStore) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    assert client.get("/v1/readings").status_code == 401
    assert client.get("/v1/readings", headers={"Authorization": "Bearer junk"}).status_code == 401
    expired = jwt.encode(
        {
            "iss": "platone-bal",
            "sub": "admin",
            "iat": 1,
            "exp": int(time.time()) - 5,
            "scope": "admin",
        },
        KEY,
        "HS256",
    )
    assert (
        client.get("/v1/readings", headers={"Authorization": f"Bearer {expired}"}).status_code
        == 401
    )
    forged = jwt.encode(
        {
            "iss": "platone-bal",
            "sub": "admin",
            "iat": 1,
            "exp": int(time.time()) + 60,
            "scope": "admin",
        },
        "x" * 64,
        "HS256",
    )
    assert (
        client.get("/v1/readings", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    new_user = {"username": "x1", "password": "secret-pass-1", "role": "admin"}
    assert client.post("/v1/users", json=new_user, headers=producer).status_code == 403
    assert client.get("/v1/users", headers=producer).status_code == 403
    store._connection().execute("UPDATE users SET disabled = 1 WHERE username = 'producer1'")
    assert client.get("/v1/readings", headers=producer).status_code == 401


def test_readings_filters_and_pages(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    publish(store, "producer1", SAMPLE_XML)
    publish(store, "producer1", SAMPLE_PMU)
    everything = client.get("/v1/readings", headers=producer).json()
    assert [i["value"] for i in everything["items"]] == ["11.04", "3.45", "11", "22"]
    assert everything["next_cursor"] is None
    item = everything["items"][0]
    for key in ("id", "index", "log", "producer", "device", "time", "measurand", "value", "unit"):
        assert key in item
    pages, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/readings", params=params, headers=producer).json()
        pages += [i["value"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == ["11.04", "3.45", "11", "22"]
    by_device = client.get("/v1/readings", params={"device": "pmu1"}, headers=admin).json()
    assert [i["value"] for i in by_device["items"]] == ["11", "22"]
    window = client.get(
        "/v1/readings",
        params={"from": "2019-09-13T12:30:00Z", "to": "2019-09-13T12:30:00.000001Z"},
        headers=admin,
    ).json()
    assert len(window["items"]) == 2
    code = "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.73.0"
    assert [
        i["value"]
        for i in client.get("/v1/readings", params={"measurand": code}, headers=admin).json()[
            "items"
        ]
    ] == ["3.45"]
    assert (
        client.get("/v1/readings", params={"cursor": "garbage!"}, headers=admin).status_code == 400
    )
    assert (
        client.get("/v1/readings", params={"from": "yesterday"}, headers=admin).status_code == 400
    )
    assert client.get("/v1/readings", params={"limit": 0}, headers=admin).status_code == 422


def test_producers_see_only_their_own_and_consumers_nothing_yet(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    one = add_user(client, admin, "producer1", "producer")
    two = add_user(client, admin, "producer2", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    publish(store, "producer1", SAMPLE_PMU)
    publish(store, "producer2", SAMPLE_XML)
    assert {i["producer"] for i in client.get("/v1/readings", headers=one).json()["items"]} == {
        "producer1"
    }
    assert (
        client.get("/v1/readings", params={"producer": "producer2"}, headers=one).status_code == 403
    )
    assert client.get("/v1/readings", headers=two).json()["items"][0]["producer"] == "producer2"
    assert client.get("/v1/readings", headers=consumer).json()["items"] == []
    assert (
        client.get("/v1/readings", params={"producer": "producer1"}, headers=consumer).status_code
        == 403
    )
    assert len(client.get("/v1/readings", headers=admin).json()["items"]) == 4


def test_rejections_are_visible_to_admin_and_own_producer(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    one = add_user(client, admin, "producer1", "producer")
    two = add_user(client, admin, "producer2", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    publish(store, "producer1", b"{broken")
    page = client.get("/v1/rejections", headers=one).json()
    (item,) = page["items"]
    assert item["producer"] == "producer1" and "malformed JSON" in item["reason"]
    assert item["size"] == 7 and item["channel"] == "mqtt"
    assert client.get("/v1/rejections", headers=two).json()["items"] == []
    assert len(client.get("/v1/rejections", headers=admin).json()["items"]) == 1
    assert client.get("/v1/rejections", headers=consumer).status_code == 403


def test_openapi_describes_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/oauth/token", "/v1/users", "/v1/readings", "/v1/rejections", "/healthz"):
        assert path in paths
