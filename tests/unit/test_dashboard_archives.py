"""The Data lifecycle page (/admin/archives): archived days listed with their files,
restored through the form and followed to the end; only admins, only with the session's
CSRF token. (In a real browser: tests/integration/test_dashboard_archives.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api import ApiContext, create_api
from platone_bal.ports import ArchiveStatus
from platone_bal.services.archiver import Archiver
from platone_bal.services.ingest import IngestService
from platone_bal.services.restore_jobs import Lifecycle, RestoreJobs
from platone_bal.services.users import UserService
from tests.contract.builders import LOG
from tests.unit.conftest import MAX_PAYLOAD, api_context
from tests.unit.test_api import add_user, login
from tests.unit.test_dashboard_pages import sign_in


@pytest.fixture
def lifecycle(archiver: Archiver) -> Lifecycle:
    return Lifecycle(archiver, RestoreJobs(archiver))


@pytest.fixture
def context(store: SqliteStore, users: UserService, lifecycle: Lifecycle) -> ApiContext:
    users.ensure_admin("admin-pass-1")
    ingest = IngestService(store, log_id=LOG, max_payload_bytes=MAX_PAYLOAD)
    return replace(api_context(store, users, ingest), lifecycle=lifecycle)


@pytest.fixture
def client(context: ApiContext) -> Iterator[TestClient]:
    with TestClient(create_api(context)) as test_client:
        yield test_client


def rows(page: str, attribute: str) -> dict[str, str]:
    """The table rows marked `attribute="key"`, by key, as their text without tags."""
    found = re.findall(rf'<tr {attribute}="([^"]+)">(.*?)</tr>', page, re.S)
    return {key: " ".join(re.sub(r"<[^>]+>", " ", row).split()) for key, row in found}


def job_status(page: str, job: str) -> str:
    found = re.search(rf'<tr data-job="{job}">.*?<td data-job-status>([^<]*)', page, re.S)
    assert found, f"job {job} is not on the page"
    return found.group(1).rstrip(": ")


def follow(client: TestClient, job: str) -> str:
    """The page of `job` once the job has ended."""
    deadline = time.monotonic() + 30
    while True:
        page: str = client.get("/admin/archives", params={"job": job}).text
        if job_status(page, job) != "running" or time.monotonic() > deadline:
            return page
        assert "check progress" in page  # the way to look again while it runs
        time.sleep(0.05)


def test_archived_days_are_listed_and_restored_through_the_form(
    client: TestClient, archiver: Archiver, store: SqliteStore
) -> None:
    archiver.archive_due()
    csrf = sign_in(client, "admin", "admin-pass-1")
    home = client.get("/admin").text
    assert 'href="/admin/archives"' in home
    assert re.search(r"<dt>Archived days</dt><dd>2</dd>", home)
    assert re.search(r"<dt>Live days</dt><dd>1</dd>", home)

    page = client.get("/admin/archives").text
    assert "8 days: measured on 2026-03-03 or later" in page
    parts = rows(page, "data-part")
    assert list(parts) == ["2026-03-02/1", "2026-03-01/1"]  # newest first
    assert " archived 13 " in parts["2026-03-02/1"]
    assert " archived 12 " in parts["2026-03-01/1"]
    record = next(r for r in store.archives(LOG) if r.day.isoformat() == "2026-03-01")
    full = "0x" + record.sha3.hex()
    assert f'title="{full}">{full[:14]}…</code>' in page
    assert record.file in page
    assert list(rows(page, "data-live-day")) == ["2026-03-03"]

    started = client.post(
        "/admin/archives/restore",
        data={"csrf": csrf, "from": "2026-03-01", "to": "2026-03-02"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    query = parse_qs(urlsplit(started.headers["location"]).query)
    (first,) = query["job"]
    assert query["notice"] == [
        f"Restore job {first} started: 2 archived part(s) of 2026-03-01 to 2026-03-02."
    ]
    assert f"Restore job {first} started" in client.get(started.headers["location"]).text

    page = follow(client, first)
    assert job_status(page, first) == "done"
    job = rows(page, "data-job")[first]
    assert "2026-03-01 to 2026-03-02 admin done 2 of 2 25 2026-03-01, 2026-03-02" in job
    live = rows(page, "data-live-day")
    assert list(live) == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert live["2026-03-01"] == "2026-03-01 12 restored"
    assert live["2026-03-03"] == "2026-03-03 13 in the hot window"
    parts = rows(page, "data-part")
    assert " restored " in parts["2026-03-01/1"]
    assert "kept live until 2026-03-17 12:00:00 UTC" in parts["2026-03-01/1"]
    assert {r.status for r in store.archives(LOG)} == {ArchiveStatus.RESTORED}

    # the node's latest restores are shown without ?job=
    assert job_status(client.get("/admin/archives").text, first) == "done"
    # asking again for live days starts a job with nothing to do
    again = client.post(
        "/admin/archives/restore",
        data={"csrf": csrf, "from": "2026-03-01", "to": "2026-03-01"},
        follow_redirects=False,
    )
    assert (
        "no archived part in 2026-03-01"
        in parse_qs(urlsplit(again.headers["location"]).query)["notice"][0]
    )
    (second,) = parse_qs(urlsplit(again.headers["location"]).query)["job"]
    assert second != first
    assert job_status(follow(client, second), second) == "done"


def test_producers_and_consumers_neither_see_the_page_nor_restore(
    client: TestClient, archiver: Archiver, lifecycle: Lifecycle
) -> None:
    archiver.archive_due()
    admin = login(client, "admin", "admin-pass-1")
    for role, home in (("producer", "/producer"), ("consumer", "/consumer")):
        add_user(client, admin, f"{role}9", role)
        browser = TestClient(client.app)
        csrf = sign_in(browser, f"{role}9", f"pass-{role}9")
        refused = browser.get("/admin/archives", follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith(f"{home}?problem=")
        posted = browser.post(
            "/admin/archives/restore",
            data={"csrf": csrf, "from": "2026-03-01", "to": "2026-03-02"},
            follow_redirects=False,
        )
        assert posted.headers["location"].startswith(f"{home}?problem=Only%20administrators")
        assert "Data lifecycle" not in browser.get(home).text
    assert lifecycle.jobs.recent() == []
    assert {r.status for r in lifecycle.archiver.store.archives(LOG)} == {ArchiveStatus.ARCHIVED}
    # without a session: the login page
    stranger = TestClient(client.app)
    assert stranger.get("/admin/archives", follow_redirects=False).headers["location"] == "/login"


def test_the_form_needs_the_sessions_csrf_token_and_real_days(
    client: TestClient, archiver: Archiver, lifecycle: Lifecycle
) -> None:
    archiver.archive_due()
    csrf = sign_in(client, "admin", "admin-pass-1")
    days = {"from": "2026-03-01", "to": "2026-03-02"}
    missing = client.post("/admin/archives/restore", data=days, follow_redirects=False)
    assert missing.status_code == 422  # the form field is required
    forged = client.post(
        "/admin/archives/restore", data={**days, "csrf": "x" + csrf}, follow_redirects=False
    )
    assert forged.status_code == 403
    for wrong, problem in (
        ({"from": "2026-03-02", "to": "2026-03-01"}, "the last day is before the first"),
        ({"from": "March", "to": "2026-03-01"}, "write the days as YYYY-MM-DD"),
    ):
        answer = client.post(
            "/admin/archives/restore", data={**wrong, "csrf": csrf}, follow_redirects=False
        )
        assert problem in parse_qs(urlsplit(answer.headers["location"]).query)["problem"][0]
    assert lifecycle.jobs.recent() == []
    unknown = client.get("/admin/archives", params={"job": "7"}).text
    assert "No restore job 7 on this node" in unknown


def test_a_node_without_archives_says_so(context: ApiContext) -> None:
    with TestClient(create_api(replace(context, lifecycle=None))) as client:
        csrf = sign_in(client, "admin", "admin-pass-1")
        assert "This node keeps no archives" in client.get("/admin/archives").text
        assert "This node keeps no archives" in client.get("/admin").text
        answer = client.post(
            "/admin/archives/restore",
            data={"csrf": csrf, "from": "2026-03-01", "to": "2026-03-01"},
            follow_redirects=False,
        )
        assert "keeps%20no%20archives" in answer.headers["location"]
