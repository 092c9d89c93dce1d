"""The access audit log: every data access and grant change is a leaf of bal-audit,
visible to the admin, to the producer whose data it concerned, and to the actor."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.merkle import SHA3_256, merkle_root, tree_root
from platone_bal.services.audit import audit_log
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.test_api import add_user, publish


def test_accesses_and_grant_changes_are_logged_and_shown_to_whom_they_concern(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    add_user(client, admin, "producer2", "producer")
    publish(store, "producer1", SAMPLE_XML)
    publish(store, "producer2", SAMPLE_PMU)
    grant = client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer).json()
    client.post(f"/v1/grants/{grant['id']}/accept", headers=producer).raise_for_status()
    client.get("/v1/readings", params={"device": "11111111"}, headers=consumer)
    client.post("/scd/getData", json={"producer": "producer1", "limit": 1}, headers=consumer)
    client.get("/v1/readings", headers=admin)

    everything = client.get("/v1/audit", headers=admin).json()["items"]
    assert [e["action"] for e in everything] == [
        "grant.requested",
        "grant.accepted",
        "readings.read",
        "readings.read",
        "readings.read",
    ]
    read = everything[2]
    assert (read["who"], read["channel"], read["producers"], read["count"]) == (
        "consumer1",
        "http",
        ["producer1"],
        2,
    )
    assert read["query"] == "/v1/readings?device=11111111"
    assert everything[4]["producers"] == ["producer1", "producer2"]  # the admin read both

    mine = client.get("/v1/audit", headers=producer).json()["items"]
    assert [e["index"] for e in mine] == [0, 1, 2, 3, 4]  # its grant, its data read
    theirs = client.get("/v1/audit", headers=consumer).json()["items"]
    assert [e["who"] for e in theirs] == ["consumer1", "consumer1", "consumer1"]
    other = add_user(client, admin, "consumer2", "consumer")
    assert client.get("/v1/audit", headers=other).json()["items"] == []
    page = client.get("/v1/audit", params={"limit": 2}, headers=admin).json()
    rest = client.get("/v1/audit", params={"cursor": page["next_cursor"]}, headers=admin).json()
    assert [e["index"] for e in page["items"] + rest["items"]] == [0, 1, 2, 3, 4]


def test_the_audit_log_is_a_merkle_log_of_its_exact_leaves(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    for _ in range(5):
        client.get("/v1/readings", headers=admin)
    size = store.log_size(AUDIT_LOG)
    assert size == 5
    leaves = [leaf for _, leaf in store.audit_entries(limit=100)]
    assert all(json.loads(leaf)["log"] == AUDIT_LOG for leaf in leaves)
    expected = merkle_root(SHA3_256, [SHA3_256.hash_leaf(leaf) for leaf in leaves])
    assert tree_root(SHA3_256, store.nodes(AUDIT_LOG), size) == expected
    assert store.log_size("bal-main") == 0  # the readings' log is separate


def test_bal_audit_recomputes_the_access_log_and_finds_a_changed_entry(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    for _ in range(3):
        client.get("/v1/readings", headers=admin)
    report = audit_log(store, AUDIT_LOG, chain=None)
    assert report.ok and report.readings == 3
    with store._transaction() as db:  # someone edits the record of the second access
        (leaf,) = db.execute("SELECT leaf FROM audit WHERE idx = 1").fetchone()
        forged = bytes(leaf).replace(b'"count":0', b'"count":9')
        db.execute("UPDATE audit SET leaf = ? WHERE idx = 1", (forged,))
    report = audit_log(store, AUDIT_LOG, chain=None)
    assert report.bad_index == 1
    assert report.problem == "leaf bytes do not hash to the stored leaf hash"


def test_bal_audit_finds_an_entry_hidden_from_its_producer(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    publish(store, "producer1", SAMPLE_XML)
    grant = client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer).json()
    client.post(f"/v1/grants/{grant['id']}/accept", headers=producer).raise_for_status()
    client.get("/v1/readings", headers=consumer)  # index 2: consumer1 read producer1's data
    assert audit_log(store, AUDIT_LOG, chain=None).ok
    with store._transaction() as db:  # someone hides that read from producer1's view
        db.execute("DELETE FROM audit_producers WHERE idx = 2")
    assert [e["index"] for e in client.get("/v1/audit", headers=producer).json()["items"]] == [
        0,
        1,
    ]
    report = audit_log(store, AUDIT_LOG, chain=None)
    assert report.bad_index == 2
    assert report.problem == "producers: stored [], certified entry says ['producer1']"
