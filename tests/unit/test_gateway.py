"""Gateway duties: rate limits, access logs without secrets, metrics, CORS, ETags."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api import create_api
from platone_bal.api.gateway import GatewayConfig, RateLimiter
from platone_bal.domain.checkpoint import Anchor
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import IngestService
from platone_bal.services.users import UserService
from tests.conftest import SAMPLE_PMU
from tests.unit.conftest import api_context
from tests.unit.test_api import add_user, login, publish
from tests.unit.test_checkpoints import KEY as SIGNING_KEY
from tests.unit.test_ingest import NOW


def app_with(store: SqliteStore, users: UserService, config: GatewayConfig) -> TestClient:
    users.ensure_admin("admin-pass-1")
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
    context = api_context(store, users, ingest)
    return TestClient(create_api(context, config))


def test_token_buckets_refill_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.take("b", now=0.0) is None  # each caller has its own bucket
    assert limiter.take("a", now=0.5) is None


def test_each_caller_is_limited_on_its_own_with_retry_after(
    store: SqliteStore, users: UserService
) -> None:
    with app_with(store, users, GatewayConfig(rate=0.1, burst=3)) as client:
        admin = login(client, "admin", "admin-pass-1")  # 1st request from this IP
        assert client.get("/v1/users", headers=admin).status_code == 200
        assert client.get("/v1/users", headers=admin).status_code == 200
        assert client.get("/v1/users", headers=admin).status_code == 200
        limited = client.get("/v1/users", headers=admin)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        # the anonymous IP bucket is separate from the admin's
        assert client.get("/healthz").status_code == 200


def test_large_answers_are_charged_as_debt_down_to_one_burst() -> None:
    limiter = RateLimiter(rate=10.0, burst=20)
    assert limiter.take("a", now=0.0) is None
    limiter.charge("a", 100, now=0.0)  # far beyond the burst: the debt stops at -20
    assert limiter.take("a", now=0.0) == pytest.approx(2.1)  # (1 - -20) / 10
    assert limiter.take("a", now=2.1) is None
    assert limiter.take("b", now=0.0) is None


def many_readings(count: int) -> bytes:
    """One PMU payload with `count` readings."""
    readings = [
        {"component": f"BUS{n}", "measurand": "voltmagnitude", "phase": "A", "data": n}
        for n in range(count)
    ]
    payload = {"device": "pmu1", "timestamp": "2020-05-20T10:27:57+00:00", "readings": readings}
    return json.dumps(payload).encode()


def test_a_token_pulling_large_pages_meets_429_at_the_default_rate(
    store: SqliteStore, users: UserService
) -> None:
    clock = [0.0]  # frozen: no refill unless the test moves it
    with app_with(store, users, GatewayConfig(clock=lambda: clock[0])) as client:
        admin = login(client, "admin", "admin-pass-1")
        producer = add_user(client, admin, "producer1", "producer")
        publish(store, "producer1", many_readings(1000))
        pulls = []
        for _ in range(100):  # counted as requests, 100 pulls would all pass (burst 200)
            answer = client.get("/v1/readings", params={"limit": 1000}, headers=producer)
            pulls.append(answer.status_code)
            if answer.status_code != 200:
                break
        assert pulls[-1] == 429 and 20 <= pulls.count(200) <= 40  # about 7 tokens a page
        retry = int(answer.headers["retry-after"])
        assert 1 <= retry <= 5
        assert client.get("/v1/me", headers=admin).status_code == 200  # others unaffected
        clock[0] += retry
        assert client.get("/v1/readings", params={"limit": 10}, headers=producer).is_success


def test_anonymous_answers_cost_one_request_whatever_their_size(
    store: SqliteStore, users: UserService
) -> None:
    config = GatewayConfig(rate=1.0, burst=3, clock=lambda: 0.0)
    with app_with(store, users, config) as client:
        plotly = [client.get("/static/vendor/plotly.min.js") for _ in range(3)]
        assert [len(answer.content) > 1_000_000 for answer in plotly] == [True] * 3
        assert client.get("/healthz").status_code == 429  # the fourth request


def test_access_log_names_who_and_what_but_no_secret(
    client: TestClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="platone_bal.access"):
        login(client, "admin", "admin-pass-1")
        client.get("/v1/readings", params={"device": "x"}, headers=admin)
        client.get("/v1/readings", headers={"Authorization": "Bearer not-a-token"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "platone_bal.access"]
    assert {"who": "user:admin", "method": "GET", "route": "/v1/readings"}.items() <= (
        lines[1].items()
    )
    assert lines[1]["status"] == 200 and lines[1]["ms"] >= 0
    assert lines[2]["who"].startswith("ip:") and lines[2]["status"] == 401
    text = caplog.text
    for secret in ("admin-pass-1", admin["Authorization"].split()[1], "not-a-token"):
        assert secret not in text


def test_metrics_count_requests_and_show_log_and_anchor_lag(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    publish(store, "producer1", SAMPLE_PMU)
    client.get("/v1/users", headers=admin)
    text = client.get("/metrics").text
    assert 'bal_http_requests_total{method="GET",route="/v1/users",status="200"}' in text
    assert 'bal_http_request_seconds_bucket{le="0.005",method="GET",route="/v1/users"}' in text
    assert 'bal_log_size{log="bal-main"} 2.0' in text
    assert 'bal_anchor_lag_readings{log="bal-main"} 2.0' in text


def test_cors_only_for_configured_origins(store: SqliteStore, users: UserService) -> None:
    config = GatewayConfig(cors_origins=["https://dashboard.dso.example"])
    with app_with(store, users, config) as client:
        allowed = client.options(
            "/v1/readings",
            headers={
                "Origin": "https://dashboard.dso.example",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "https://dashboard.dso.example"
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_anchored_proofs_and_checkpoints_are_immutable_with_etags(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    publish(store, "producer1", SAMPLE_PMU)
    checkpointer = Checkpointer(
        store, log_id="bal-main", private_key=SIGNING_KEY, clock=lambda: NOW
    )
    signed = checkpointer.checkpoint_now()
    assert signed is not None
    unanchored = client.get("/v1/readings/1/proof", headers=producer)
    assert unanchored.headers["cache-control"] == "no-store" and "etag" not in unanchored.headers
    checkpoint = signed.checkpoint
    store.add_anchor(
        Anchor(
            "bal-main",
            2,
            checkpoint.root,
            1337,
            "0x" + "11" * 20,
            "0x" + "22" * 32,
            7,
            NOW.isoformat(),
        )
    )
    first = client.get("/v1/readings/1/proof", headers=producer)
    assert first.headers["cache-control"] == "private, max-age=31536000, immutable"
    etag = first.headers["etag"]
    again = client.get("/v1/readings/1/proof", headers={**producer, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    one = client.get("/v1/logs/bal-main/checkpoints/2", headers=producer)
    assert one.json()["anchor"]["tx"] == "0x" + "22" * 32 and one.headers["etag"]
    assert client.get("/v1/logs/bal-main/checkpoints/3", headers=producer).status_code == 404
