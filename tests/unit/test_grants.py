"""Grants: the state machine, narrowing and expiry, and their enforcement on REST."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api.cursors import encode_cursor
from platone_bal.domain.grants import (
    Grant,
    GrantConflict,
    GrantError,
    GrantStatus,
    NotEntitled,
    Slice,
)
from platone_bal.domain.readings import format_time
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.test_api import add_user, publish

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def requested(scope: Slice | None = None, expires: datetime | None = None) -> Grant:
    return Grant(
        id=1,
        consumer="consumer1",
        scope=scope or Slice("producer1"),
        status=GrantStatus.REQUESTED,
        created=T0,
        modified=T0,
        expires=expires,
    )


def test_state_machine_allows_only_the_seeds_transitions() -> None:
    grant = requested()
    with pytest.raises(NotEntitled):
        grant.accept("consumer1", T0)
    with pytest.raises(GrantConflict):
        grant.revoke("consumer1", T0)
    accepted = grant.accept("producer1", T0 + timedelta(seconds=1))
    assert accepted.status is GrantStatus.ACCEPTED and accepted.decided_by == "producer1"
    assert accepted.modified == T0 + timedelta(seconds=1) and accepted.created == T0
    with pytest.raises(GrantConflict):
        accepted.refuse("producer1", T0)
    revoked = accepted.revoke("consumer1", T0, "no longer needed")
    assert (revoked.status, revoked.reason) == (GrantStatus.REVOKED, "no longer needed")
    with pytest.raises(GrantConflict):
        revoked.accept("producer1", T0)
    refused = grant.refuse("producer1", T0, "not for you")
    with pytest.raises(GrantConflict):
        refused.revoke("producer1", T0)
    with pytest.raises(NotEntitled):
        accepted.revoke("stranger", T0)


def test_accepting_may_only_narrow_and_expiry_is_judged_at_use() -> None:
    wide = Slice("producer1", devices=frozenset({"m1", "m2"}), since=T0)
    grant = requested(wide, expires=T0 + timedelta(days=30))
    narrow = Slice("producer1", devices=frozenset({"m1"}), since=T0 + timedelta(days=1))
    accepted = grant.accept("producer1", T0, narrow, T0 + timedelta(days=7))
    assert accepted.scope == narrow and accepted.expires == T0 + timedelta(days=7)
    with pytest.raises(GrantError, match="only narrow"):
        grant.accept("producer1", T0, Slice("producer1", devices=frozenset({"m3"})))
    with pytest.raises(GrantError, match="only narrow"):
        grant.accept("producer1", T0, Slice("producer1"))  # all devices is wider
    with pytest.raises(GrantError, match="outlast"):
        grant.accept("producer1", T0, None, T0 + timedelta(days=31))
    assert accepted.active(T0 + timedelta(days=6))
    assert accepted.status_at(T0 + timedelta(days=7)) is GrantStatus.EXPIRED
    with pytest.raises(GrantConflict, match="expired"):
        accepted.revoke("producer1", T0 + timedelta(days=8))
    assert narrow.covers("producer1", "m1", "any", T0 + timedelta(days=2))
    assert not narrow.covers("producer1", "m2", "any", T0 + timedelta(days=2))
    assert not narrow.covers("producer1", "m1", "any", T0)


def grant_flow(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> tuple[dict[str, str], dict[str, str]]:
    producer = add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    publish(store, "producer1", SAMPLE_XML)  # device 11111111, readings 1-2
    publish(store, "producer1", SAMPLE_PMU)  # device pmu1, readings 3-4
    return producer, consumer


def test_consumer_reads_exactly_what_an_accepted_grant_covers_until_revoked(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer, consumer = grant_flow(client, admin, store)
    assert client.get("/v1/readings", headers=consumer).json()["items"] == []
    assert client.get("/v1/readings/3/proof", headers=consumer).status_code == 404
    listed = client.get("/v1/producers", headers=consumer).json()
    assert [(p["username"], p["grant_status"]) for p in listed] == [("producer1", None)]

    asked = client.post(
        "/v1/grants", json={"producer": "producer1", "reason": "voltage study"}, headers=consumer
    )
    assert asked.status_code == 201, asked.text
    grant = asked.json()
    assert (grant["status"], grant["consumer"], grant["devices"]) == (
        "requested",
        "consumer1",
        None,
    )
    again = client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer)
    assert again.status_code == 409  # one open grant per pair
    assert client.get("/v1/readings", headers=consumer).json()["items"] == []  # not yet
    assert client.post(f"/v1/grants/{grant['id']}/accept", headers=consumer).status_code == 403

    accepted = client.post(
        f"/v1/grants/{grant['id']}/accept", json={"devices": ["pmu1"]}, headers=producer
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["devices"] == ["pmu1"]
    rows = client.get("/v1/readings", headers=consumer).json()["items"]
    assert [(r["device"], r["value"]) for r in rows] == [("pmu1", "11"), ("pmu1", "22")]
    assert client.get("/v1/readings/3/proof", headers=consumer).status_code == 409  # no checkpoint
    assert client.get("/v1/readings/1/proof", headers=consumer).status_code == 404  # not granted
    page = client.post("/scd/getData", json={"producer": "producer1"}, headers=consumer).json()
    assert [r["device"] for r in page["items"]] == ["pmu1", "pmu1"]
    listed = client.get("/v1/producers", headers=consumer).json()
    assert listed[0]["grant_status"] == "accepted"
    mine = client.get("/v1/grants", headers=producer).json()
    assert [g["id"] for g in mine] == [grant["id"]]

    revoked = client.post(
        f"/v1/grants/{grant['id']}/revoke", json={"reason": "study over"}, headers=producer
    )
    assert revoked.json()["status"] == "revoked" and revoked.json()["reason"] == "study over"
    assert client.get("/v1/readings", headers=consumer).json()["items"] == []
    forbidden = client.get("/v1/readings", params={"producer": "producer1"}, headers=consumer)
    assert forbidden.status_code == 403


def test_expired_grants_stop_at_the_next_read(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer, consumer = grant_flow(client, admin, store)
    expires = format_time(datetime.now(UTC) + timedelta(seconds=1.5))
    grant = client.post(
        "/v1/grants", json={"producer": "producer1", "expires": expires}, headers=consumer
    ).json()
    client.post(f"/v1/grants/{grant['id']}/accept", headers=producer).raise_for_status()
    assert len(client.get("/v1/readings", headers=consumer).json()["items"]) == 4
    time.sleep(1.6)
    assert client.get("/v1/readings", headers=consumer).json()["items"] == []
    assert client.get(f"/v1/grants/{grant['id']}", headers=consumer).json()["status"] == "expired"
    # an expired grant no longer blocks a new request
    assert (
        client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer).status_code
        == 201
    )


def test_grants_are_private_to_their_parties_and_only_consumers_ask(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer, consumer = grant_flow(client, admin, store)
    other = add_user(client, admin, "consumer2", "consumer")
    grant = client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer).json()
    assert client.get(f"/v1/grants/{grant['id']}", headers=other).status_code == 404
    assert client.post(f"/v1/grants/{grant['id']}/revoke", headers=other).status_code == 404
    assert (
        client.post("/v1/grants", json={"producer": "producer1"}, headers=producer).status_code
        == 403
    )
    assert client.get("/v1/grants", headers=other).json() == []
    everyone = client.get("/v1/grants", headers=admin).json()  # the operator sees all
    assert [(g["id"], g["consumer"]) for g in everyone] == [(grant["id"], "consumer1")]
    ghost = client.post("/v1/grants", json={"producer": "ghost"}, headers=consumer)
    assert ghost.status_code == 404
    past = client.post(
        "/v1/grants",
        json={"producer": "producer1", "expires": "2000-01-01T00:00:00Z"},
        headers=other,
    )
    assert past.status_code == 422


def test_a_narrowed_consumer_reaches_nothing_else_by_guessing(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    """Readings 1-2 are the meter's, 3-4 pmu1's; consumer1 holds only pmu1."""
    producer, consumer = grant_flow(client, admin, store)
    add_user(client, admin, "producer2", "producer")
    publish(store, "producer2", SAMPLE_PMU.replace(b"pmu1", b"pmu9"))  # reading 5
    grant = client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer).json()
    client.post(
        f"/v1/grants/{grant['id']}/accept", json={"devices": ["pmu1"]}, headers=producer
    ).raise_for_status()

    def ids(**params: object) -> list[int]:
        answer = client.get("/v1/readings", params=params, headers=consumer)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["items"]]

    assert ids() == [3, 4]
    assert ids(device="11111111") == []  # a device outside the grant
    assert ids(producer="producer1", device="11111111") == []
    # a cursor forged to start before the meter's readings still pages the slice only
    assert ids(cursor=encode_cursor("r", 0), limit=1) == [3]
    assert ids(cursor=encode_cursor("r", 3)) == [4]
    for reading_id in (1, 2, 5, 6, 999):
        assert client.get(f"/v1/readings/{reading_id}/proof", headers=consumer).status_code == 404
    assert (
        client.get("/v1/readings", params={"producer": "producer2"}, headers=consumer).status_code
        == 403
    )

    def certifications(device: str) -> tuple[int, str]:
        params = {"producer": "producer1", "device": device}
        answer = client.get("/v1/certifications", params=params, headers=consumer)
        return answer.status_code, answer.text.replace(device, "D")

    assert certifications("11111111") == certifications("no-such-device")  # no hint
    meter = {"log": "bal-main", "index": 0, "value": "11.04"}
    assert client.post("/bap/getOwner", json=meter, headers=consumer).status_code == 404
    rejections = client.get("/v1/rejections", headers=consumer)
    assert rejections.status_code == 403 or rejections.json()["items"] == []
    assert client.get("/v1/devices", headers=consumer).status_code == 403
    # the producer guessing the other way: another producer's data and another's grant
    other = add_user(client, admin, "consumer2", "consumer")
    theirs = client.post("/v1/grants", json={"producer": "producer2"}, headers=other).json()
    assert client.get(f"/v1/grants/{theirs['id']}", headers=producer).status_code == 404
    assert client.post(f"/v1/grants/{theirs['id']}/accept", headers=producer).status_code == 404
    assert client.get(f"/v1/grants/{theirs['id']}/evidence", headers=consumer).status_code == 404
    assert client.get("/v1/readings/5/proof", headers=producer).status_code == 404
    audit = client.get("/v1/audit", params={"limit": 1000}, headers=consumer).json()["items"]
    assert {e["who"] for e in audit} == {"consumer1"}
