"""/v1/setpoints (ARCHITECTURE §8): who issues and who sees set points, and a set point's
proof verifying like a reading's once a checkpoint covers it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.proof import verify_bundle
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.services.checkpointer import Checkpointer
from tests.unit.test_api import add_user

START = datetime.now(UTC).replace(microsecond=0)


def body(device: str = "ln001", producer: str = "producer1", **change: object) -> dict[str, object]:
    return {
        "producer": producer,
        "device": device,
        "measurand": "activePowerLimit",
        "value": "3.5",
        "unit": "kW",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=1)).isoformat(),
        **change,
    }


def test_the_dso_issues_producers_see_their_own_consumers_none(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    add_user(client, admin, "producer2", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    for owner in ("producer1", "producer2"):
        device = {"device_id": "ln001", "kind": "light-node", "producer": owner}
        assert client.post("/v1/devices", json=device, headers=admin).status_code == 201
    issued = client.post("/v1/setpoints", json=body(), headers=admin)
    assert issued.status_code == 201, issued.text
    first = issued.json()
    assert (first["status"], first["log"], first["index"]) == ("issued", SETPOINT_LOG, 0)
    assert (first["issuer"], first["answer"], first["delivered"]) == ("admin", None, None)
    second = client.post("/v1/setpoints", json=body(producer="producer2"), headers=admin).json()

    assert client.post("/v1/setpoints", json=body(), headers=producer).status_code == 403
    bad = client.post("/v1/setpoints", json=body(end=START.isoformat()), headers=admin)
    assert bad.status_code == 422 and "end must be after start" in bad.text
    unknown = client.post("/v1/setpoints", json=body(device="ln009"), headers=admin)
    assert unknown.status_code == 422 and "no device 'ln009'" in unknown.text

    listed = client.get("/v1/setpoints", headers=admin).json()["items"]
    assert [s["id"] for s in listed] == [first["id"], second["id"]]
    own = client.get("/v1/setpoints", headers=producer).json()["items"]
    assert [s["id"] for s in own] == [first["id"]]
    assert client.get(f"/v1/setpoints/{second['id']}", headers=producer).status_code == 404
    assert client.get(f"/v1/setpoints/{first['id']}", headers=producer).json() == first
    assert client.get("/v1/setpoints", headers=consumer).status_code == 403
    assert client.get(f"/v1/setpoints/{first['id']}", headers=consumer).status_code == 404
    actions = [json.loads(leaf)["action"] for _, leaf in store.audit_entries(who="producer1")]
    assert actions.count("setpoints.read") == 2


def test_a_platform_client_with_the_setpoints_scope_issues(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "producer1", "producer")
    device = {"device_id": "ln001", "kind": "light-node", "producer": "producer1"}
    client.post("/v1/devices", json=device, headers=admin)
    registered = client.post(
        "/v1/clients",
        json={"name": "DSO platform", "username": "admin", "scopes": ["setpoints"]},
        headers=admin,
    ).json()
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["client_secret"],
        },
    ).json()["access_token"]
    issued = client.post("/v1/setpoints", json=body(), headers={"Authorization": f"Bearer {token}"})
    assert issued.status_code == 201, issued.text
    assert issued.json()["issuer"] == "admin"


def test_a_set_points_proof_verifies_once_checkpointed(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    device = {"device_id": "ln001", "kind": "light-node", "producer": "producer1"}
    client.post("/v1/devices", json=device, headers=admin)
    issued = client.post("/v1/setpoints", json=body(), headers=admin).json()
    path = f"/v1/setpoints/{issued['id']}/proof"
    assert client.get(path, headers=admin).status_code == 409  # no checkpoint yet
    Checkpointer(
        store, log_id=SETPOINT_LOG, private_key=b"\x07" * 32, clock=lambda: datetime.now(UTC)
    ).checkpoint_now()
    bundle = client.get(path, headers=admin).json()
    assert bundle["leaf"]["kind"] == "setpoint" and bundle["leaf"]["value"] == "3.5"
    checks = verify_bundle(bundle)
    assert [(c.name, c.ok) for c in checks] == [
        ("format", True), ("leaf", True), ("inclusion", True), ("signature", True),
        ("anchor", None),
    ]  # fmt: skip
    bundle["leaf"]["value"] = "35"
    assert [c.ok for c in verify_bundle(bundle)][1] is False
    assert client.get(f"{path}?answer=true", headers=admin).status_code == 404  # none yet
