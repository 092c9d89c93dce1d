"""/v1/archives and the readings' markers: an archived day is never a silent gap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api import create_api
from platone_bal.services.archiver import Archiver
from platone_bal.services.ingest import IngestService
from platone_bal.services.restore_jobs import Lifecycle, RestoreJobs
from platone_bal.services.users import UserService
from tests.contract.builders import LOG
from tests.unit.conftest import MAX_PAYLOAD, api_context
from tests.unit.test_api import add_user, login


@pytest.fixture
def client(store: SqliteStore, users: UserService, archiver: Archiver) -> Iterator[TestClient]:
    users.ensure_admin("admin-pass-1")
    ingest = IngestService(store, log_id=LOG, max_payload_bytes=MAX_PAYLOAD)
    context = replace(
        api_context(store, users, ingest), lifecycle=Lifecycle(archiver, RestoreJobs(archiver))
    )  # the fixture's archiver: its clock is the test's
    with TestClient(create_api(context)) as test_client:
        yield test_client


def test_archived_days_are_named_and_restored_on_demand(
    client: TestClient, archiver: Archiver
) -> None:
    admin = login(client, "admin", "admin-pass-1")
    listed = client.get("/v1/archives", headers=admin).json()
    assert [day["readings"] for day in listed["live"]] == [12, 13, 13]
    assert (listed["archives"], listed["hot_days"]) == ([], 8)

    archiver.archive_due()
    listed = client.get("/v1/archives", headers=admin).json()
    assert [(a["day"], a["status"], a["readings"]) for a in listed["archives"]] == [
        ("2026-03-01", "archived", 12),
        ("2026-03-02", "archived", 13),
    ]
    assert all(a["sha3"].startswith("0x") and a["bytes"] > 0 for a in listed["archives"])

    # nothing live: a problem document naming the archived day
    gone = client.get("/v1/readings?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z",
                      headers=admin)  # fmt: skip
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["type"] == "/problems/archived"
    assert gone.json()["archived_days"] == ["2026-03-01"]
    assert "POST /v1/archives/restore" in gone.json()["detail"]
    # some live: the live readings, and the days missing from them
    part = client.get("/v1/readings?from=2026-03-02T12:00:00Z&to=2026-03-04T00:00:00Z",
                      headers=admin).json()  # fmt: skip
    assert {item["time"][:10] for item in part["items"]} == {"2026-03-03"}
    assert part["archived_days"] == ["2026-03-02"]
    everything = client.get("/v1/readings", headers=admin).json()
    assert everything["archived_days"] == ["2026-03-01", "2026-03-02"]
    # a chart of an archived day, and a dataset with an archived day in it
    chart = client.get(
        "/v1/series?producer=alice&device=pmu-1&measurand=voltage"
        "&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z",
        headers=admin,
    )
    assert (chart.status_code, chart.json()["archived_days"]) == (404, ["2026-03-01"])
    chart = client.get(
        "/v1/series?producer=alice&device=pmu-1&measurand=voltage"
        "&from=2026-03-02T00:00:00Z&to=2026-03-04T00:00:00Z",
        headers=admin,
    ).json()
    assert (sum(b["count"] for b in chart["buckets"]), chart["archived_days"]) == (
        6,
        ["2026-03-02"],
    )
    dataset = client.get(
        "/v1/certifications?producer=alice&device=pmu-1"
        "&from=2026-03-02T00:00:00Z&to=2026-03-04T00:00:00Z",
        headers=admin,
    )
    assert dataset.status_code == 409
    assert dataset.json()["archived_days"] == ["2026-03-02"]
    assert "answered whole" in dataset.json()["detail"]
    # a window of live days only says nothing is archived
    hot = client.get("/v1/readings?from=2026-03-03T00:00:00Z", headers=admin).json()
    assert (len(hot["items"]), hot["archived_days"]) == (13, [])

    started = client.post(
        "/v1/archives/restore", json={"from": "2026-03-01", "to": "2026-03-02"}, headers=admin
    )
    assert started.status_code == 202, started.text
    assert started.json()["parts"] == 2
    location = started.headers["location"]
    deadline = time.monotonic() + 30
    job = started.json()
    while job["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(location, headers=admin).json()
    assert (job["status"], job["parts_done"], job["readings"], job["error"]) == (
        "done",
        2,
        25,
        None,
    )
    assert job["days"] == ["2026-03-01", "2026-03-02"]
    back = client.get("/v1/readings?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z",
                      headers=admin).json()  # fmt: skip
    assert (len(back["items"]), back["archived_days"]) == (12, [])


def test_only_admins_see_and_restore_archives(client: TestClient) -> None:
    admin = login(client, "admin", "admin-pass-1")
    for role in ("producer", "consumer"):
        other = add_user(client, admin, f"{role}9", role)
        assert client.get("/v1/archives", headers=other).status_code == 403
        asked = client.post(
            "/v1/archives/restore", json={"from": "2026-03-01", "to": "2026-03-01"}, headers=other
        )
        assert asked.status_code == 403
    assert client.get("/v1/archives").status_code == 401
    backwards = client.post(
        "/v1/archives/restore", json={"from": "2026-03-02", "to": "2026-03-01"}, headers=admin
    )
    assert backwards.status_code == 400
    assert (
        client.post("/v1/archives/restore", json={"from": "March"}, headers=admin).status_code
        == 422
    )
    assert client.get("/v1/archives/restore/99", headers=admin).status_code == 404
    # a number is not a day (pydantic would read 0 as 1970-01-01), nor is February 30
    as_number = client.post("/v1/archives/restore", json={"from": 0, "to": "2026-01-31"},
                            headers=admin)  # fmt: skip
    assert as_number.status_code == 422
    no_day = client.post("/v1/archives/restore", json={"from": "2026-02-30", "to": "2026-03-01"},
                         headers=admin)  # fmt: skip
    assert no_day.status_code == 400
