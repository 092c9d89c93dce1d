"""The dashboard's server side: sessions, CSRF, who may see which page and file.
(The browser flows run in Chromium: tests/integration/test_dashboard.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api import create_api
from platone_bal.domain.messages import Channel
from platone_bal.domain.users import Role
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.users import UserService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.conftest import api_context
from tests.unit.test_api import add_user, publish
from tests.unit.test_checkpoints import KEY as SIGNING_KEY
from tests.unit.test_ingest import NOW


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str) -> str:
    """Sign in through the form; returns the CSRF token of the new session."""
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"csrf": csrf_of(form.text), "username": username, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get(answer.headers["location"]).text)


def test_pages_need_a_session_and_forms_need_its_csrf_token(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "consumer1", "consumer")
    for path in ("/", "/consumer", "/producer", "/admin", "/explorer", "/verify"):
        answer = client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path
    assert client.get("/proofs/1.json").status_code == 401

    login = client.get("/login")
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    wrong = client.post(
        "/login",
        data={"csrf": csrf_of(login.text), "username": "consumer1", "password": "nope-nope"},
    )
    assert "Wrong username or password" in wrong.text
    forged = client.post(
        "/login", data={"csrf": "guess", "username": "consumer1", "password": "pass-consumer1"}
    )
    assert forged.status_code == 403

    csrf = sign_in(client, "consumer1", "pass-consumer1")
    cookie = client.cookies.get("bal_session")
    assert cookie
    no_token = client.post("/consumer/grants", data={"producer": "producer1"})
    assert no_token.status_code == 422  # the form field is required
    bad_token = client.post("/consumer/grants", data={"csrf": "x" + csrf, "producer": "p"})
    assert bad_token.status_code == 403
    # the session cookie alone does not open the JSON API
    assert client.get("/v1/readings").status_code == 401
    client.post("/logout", data={"csrf": csrf})
    assert client.get("/consumer", follow_redirects=False).status_code == 303


def test_each_role_has_its_page_and_a_disabled_user_is_signed_out(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "producer1", "producer")
    add_user(client, admin, "consumer1", "consumer")
    sign_in(client, "consumer1", "pass-consumer1")
    assert client.get("/", follow_redirects=False).headers["location"] == "/consumer"
    refused = client.get("/admin", follow_redirects=False)
    assert refused.headers["location"].startswith("/consumer?problem=")
    page = client.get("/consumer").text
    assert "producer1" in page and 'name="bal-api-token"' in page
    client.post("/v1/users/consumer1/disable", headers=admin).raise_for_status()
    assert client.get("/consumer", follow_redirects=False).headers["location"] == "/login"


def test_grant_decisions_through_the_forms_are_audited(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    add_user(client, admin, "consumer1", "consumer")
    consumer = TestClient(client.app)
    producer = TestClient(client.app)
    csrf = sign_in(consumer, "consumer1", "pass-consumer1")
    asked = consumer.post(
        "/consumer/grants",
        data={"csrf": csrf, "producer": "producer1", "devices": "pmu1", "reason": "study"},
        follow_redirects=False,
    )
    assert "requested" in asked.headers["location"]
    csrf = sign_in(producer, "producer1", "pass-producer1")
    assert "study" in producer.get("/producer").text
    other = consumer.post("/grants/1/accept", data={"csrf": csrf}, follow_redirects=False)
    assert other.status_code == 403  # the producer's token is not the consumer's session's
    accepted = producer.post("/grants/1/accept", data={"csrf": csrf}, follow_redirects=False)
    assert "accepted" in accepted.headers["location"]
    grant = client.get("/v1/grants/1", headers=admin).json()
    assert (grant["status"], grant["devices"]) == ("accepted", ["pmu1"])
    actions = [e["action"] for e in client.get("/v1/audit", headers=admin).json()["items"]]
    assert actions[-2:] == ["grant.requested", "grant.accepted"]


def test_proofs_and_reading_paths_only_for_readers(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    add_user(client, admin, "consumer1", "consumer")
    publish(store, "producer1", SAMPLE_XML)
    publish(store, "producer1", SAMPLE_PMU)
    Checkpointer(
        store, log_id="bal-main", private_key=SIGNING_KEY, clock=lambda: NOW
    ).checkpoint_now()
    owner = TestClient(client.app)
    sign_in(owner, "producer1", "pass-producer1")
    proof = owner.get("/proofs/1.json")
    assert proof.status_code == 200 and proof.json()["index"] == 0
    assert "attachment" in proof.headers["content-disposition"]
    assert "11111111" in owner.get("/explorer", params={"reading": 1}).text
    csrf = csrf_of(owner.get("/verify").text)
    verdict = owner.post("/verify", data={"csrf": csrf, "proof": proof.text}).text
    assert "data-verdict>VALID" in verdict and "svg" in verdict
    tampered = proof.text.replace('"11.04"', '"11.05"')
    assert (
        "data-verdict>INVALID" in owner.post("/verify", data={"csrf": csrf, "proof": tampered}).text
    )

    stranger = TestClient(client.app)
    sign_in(stranger, "consumer1", "pass-consumer1")
    assert stranger.get("/proofs/1.json").status_code == 404
    assert "No reading 1 visible to you" in stranger.get("/explorer", params={"reading": 1}).text
    assert '"index"' not in stranger.get("/verify", params={"reading": 1}).text


def test_devices_registered_through_the_form_show_their_password_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "producer1", "producer")
    owner = TestClient(client.app)
    csrf = sign_in(owner, "producer1", "pass-producer1")
    form = {"csrf": csrf, "device_id": "pmu7", "kind": "pmu", "credentials": "true"}
    answer = owner.post("/devices", data=form, follow_redirects=False)
    assert answer.status_code == 200  # the page itself: the password never goes in a URL
    secret = re.search(r"<code data-secret>([^<]+)</code>", answer.text)
    assert secret and "producer1/pmu7" in answer.text
    assert secret.group(1) not in owner.get("/producer").text  # shown once
    again = owner.post("/devices", data=form, follow_redirects=False)
    assert "Device%20not%20registered" in again.headers["location"]
    disabled = owner.post(
        "/devices/producer1/pmu7/disable", data={"csrf": csrf}, follow_redirects=False
    )
    assert "disabled" in disabled.headers["location"]
    devices = client.get("/v1/devices", headers=admin).json()
    assert [(d["device_id"], d["disabled"]) for d in devices] == [("pmu7", True)]


def test_the_session_cookie_is_httponly_strict_and_secure_under_tls(
    store: SqliteStore, users: UserService
) -> None:
    users.create("consumer1", "pass-consumer1", Role.CONSUMER)
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
    app = create_api(api_context(store, users, ingest), session_key="k" * 32, secure_cookies=True)
    with TestClient(app, base_url="https://testserver") as tls_client:
        form = tls_client.get("/login")
        answer = tls_client.post(
            "/login",
            data={
                "csrf": csrf_of(form.text),
                "username": "consumer1",
                "password": "pass-consumer1",
            },
            follow_redirects=False,
        )
    cookie = answer.headers["set-cookie"].lower()
    assert "bal_session=" in cookie
    for flag in ("httponly", "samesite=strict", "secure", "max-age=28800"):
        assert flag in cookie, flag


def test_what_devices_send_is_shown_as_text_never_as_markup(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    hostile = "platone/producer1/<script>alert(1)</script>"
    IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16).ingest(
        [Delivery(Channel.MQTT, hostile, b"<not a reading/>", datetime.now(UTC))]
    )
    owner = TestClient(client.app)
    sign_in(owner, "producer1", "pass-producer1")
    page = owner.get("/producer").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
