"""Seed-compatible endpoints and /v1/verify without a chain (anchors are the
integration tests' part): bodies on GET, POST alike, verdicts and their reasons."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.services.checkpointer import Checkpointer
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.test_api import add_user, publish
from tests.unit.test_checkpoints import KEY
from tests.unit.test_ingest import NOW


def test_get_data_takes_a_query_object_as_get_body_post_or_query(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    publish(store, "producer1", SAMPLE_XML)
    publish(store, "producer1", SAMPLE_PMU)
    query = {"device": "pmu1", "limit": 1}
    via_get = client.request("GET", "/scd/getData", json=query, headers=admin).json()
    via_post = client.post("/scd/getData", json=query, headers=admin).json()
    via_params = client.get("/scd/getData", params=query, headers=admin).json()
    assert via_get == via_post == via_params
    assert [r["value"] for r in via_get["items"]] == ["11"] and via_get["next_cursor"]
    assert via_get == client.get("/v1/readings", params=query, headers=admin).json()
    window = client.post(
        "/scd/getData",
        json={"from": "2019-09-13T12:00:00Z", "to": "2019-09-13T13:00:00Z"},
        headers=admin,
    ).json()
    assert {r["device"] for r in window["items"]} == {"11111111"}
    # a JSON body keeps JSON's types: true is no page size (schemathesis found it taken)
    wrong = client.post("/scd/getData", json={"limit": True}, headers=admin)
    assert wrong.status_code == 422


def test_validate_data_says_ko_with_the_reason_for_changed_or_unknown_data(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    other = add_user(client, admin, "producer2", "producer")
    publish(store, "producer1", SAMPLE_PMU)
    (reading, _) = client.get("/v1/readings", headers=producer).json()["items"]
    changed = {**reading, "value": "12"}
    answer = client.request("GET", "/bap/validateData", json=changed, headers=producer)
    assert (answer.status_code, answer.text) == (200, "KO")
    assert answer.headers["bal-reason"] == "value: given '12', certified '11'"
    # unknown and other producers' readings look the same: not certified for you
    for item, headers in ((reading, other), ({**reading, "id": 999}, producer)):
        probe = {k: v for k, v in item.items() if k not in ("log", "index")}
        answer = client.post("/bap/validateData", json=probe, headers=headers)
        assert answer.text == "KO"
        assert "no certified reading" in answer.headers["bal-reason"]
    # a matching reading is OK only once proven on chain: KO saying what is missing
    same = client.post("/bap/validateData", json=[reading], headers=producer)
    assert same.text == "KO" and "no signed checkpoint yet" in same.headers["bal-reason"]
    Checkpointer(store, log_id="bal-main", private_key=KEY, clock=lambda: NOW).checkpoint_now()
    signed = client.post("/bap/validateData", json=[reading], headers=producer)
    assert signed.text == "KO" and "anchor: not anchored yet" in signed.headers["bal-reason"]
    assert client.post("/bap/validateData", json=[], headers=producer).status_code == 422


def test_verify_reports_each_item_and_the_owner_comes_from_the_leaf(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    publish(store, "producer1", SAMPLE_PMU)
    first, second = client.get("/v1/readings", headers=producer).json()["items"]
    answer = client.post(
        "/v1/verify",
        json={"readings": [first, {**second, "time": "2000-01-01T00:00:00Z"}]},
        headers=producer,
    ).json()
    assert answer["status"] == "invalid"
    assert [item["status"] for item in answer["items"]] == ["pending", "invalid"]
    assert answer["items"][1]["reason"].startswith("time: given")
    bad_proof = client.post("/v1/verify", json={"proofs": [{"format": "x"}]}, headers=producer)
    assert bad_proof.json()["items"][0]["checks"][0]["name"] == "format"
    assert client.post("/v1/verify", json={}, headers=producer).status_code == 422
    owner = client.request("GET", "/bap/getOwner", json=first, headers=producer).json()
    users = {u["username"]: u for u in client.get("/v1/users", headers=admin).json()}
    assert owner == {"owner": users["producer1"]["wallet"], "producer": "producer1"}
    forged = client.post("/bap/getOwner", json={**first, "value": "99"}, headers=producer)
    assert forged.status_code == 404


def test_get_by_transaction_answers_404_for_unknown_and_400_for_malformed(
    client: TestClient, admin: dict[str, str]
) -> None:
    unknown = client.get(
        "/api/certification/getByTransaction",
        params={"transaction": "0x" + "ab" * 32},
        headers=admin,
    )
    assert unknown.status_code == 404
    malformed = client.get(
        "/api/certification/getByTransaction", params={"transaction": "0x12"}, headers=admin
    )
    assert malformed.status_code == 422
    empty = client.post("/bap/getTransactions", json={"device": "none"}, headers=admin).json()
    assert empty == {"transactions": [], "pending_readings": 0}


def test_ids_and_cursors_beyond_sqlite_integers_are_client_errors(
    client: TestClient, admin: dict[str, str]
) -> None:
    huge = 2**63
    assert client.get(f"/v1/readings/{huge}/proof", headers=admin).status_code == 422
    assert client.get(f"/v1/grants/{huge}", headers=admin).status_code == 422
    cursor = base64.urlsafe_b64encode(f"r:{huge}".encode()).decode().rstrip("=")
    assert client.get("/v1/readings", params={"cursor": cursor}, headers=admin).status_code == 400
    verdict = client.post(
        "/v1/verify", json={"readings": [{"log": "bal-main", "index": huge}]}, headers=admin
    )
    assert verdict.json()["items"][0]["status"] == "invalid"
